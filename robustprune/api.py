"""Python API for notebooks: run a preset, load a run folder, summarize it.

    import robustprune as rp
    path = rp.run_preset("smoke", out="results/runs/smoke", seeds=3, **{"ppo.num_updates": 8})
    run = rp.load_run(path)          # RunTables: cells, evaluations, certificates (DataFrames), run (dict)
    table = rp.summarize(run)        # one row per setting × attack × ε: median agent, mean, IQM with 95% CIs
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from robustprune.analysis.summary import summarize_run
from robustprune.analysis.tables import RunTables, load_runs
from robustprune.config import ConfigError, StudyConfig, _suggest

SECTIONS = ("env", "network", "ppo", "prune", "eval")


def _override(cfg: StudyConfig, name: str, value) -> StudyConfig:
    """Apply one override: `seeds` (int N → 0..N−1, or a sequence), `env` (a name), a top-level field, a
    section dict (`ppo={...}`), or one section field as `"ppo.num_updates"` or `ppo__num_updates`."""
    name = name.replace("__", ".")
    if name == "seeds":
        seeds = tuple(range(value)) if isinstance(value, int) else tuple(value)
        return dataclasses.replace(cfg, seeds=seeds)
    if name == "env" and isinstance(value, str):
        return dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, name=value))
    section, _, field = name.partition(".")
    if section in SECTIONS and not field and isinstance(value, dict):
        for key, item in value.items():
            cfg = _override(cfg, f"{section}.{key}", item)
        return cfg
    if section in SECTIONS and field:
        current = getattr(cfg, section)
        names = [f.name for f in dataclasses.fields(current)]
        if field not in names:
            raise ConfigError(f"override {name!r} names no field of {section}. Fields: {', '.join(names)}."
                              + _suggest(field, names))
        value = tuple(value) if isinstance(value, list) else value
        return dataclasses.replace(cfg, **{section: dataclasses.replace(current, **{field: value})})
    top = [f.name for f in dataclasses.fields(cfg) if f.name not in SECTIONS]
    if name in top:
        return dataclasses.replace(cfg, **{name: value})
    allowed = top + [f"{s}.<field>" for s in SECTIONS]
    raise ConfigError(f"override {name!r} is not a setting. Use one of: {', '.join(allowed)}." + _suggest(name, top))


def configure(name: str, **overrides) -> StudyConfig:
    """A preset's config with overrides applied (see `run_preset`), validated. Raises ConfigError."""
    from robustprune.presets import get_preset

    cfg = get_preset(name)
    for key in sorted(overrides):
        cfg = _override(cfg, key, overrides[key])
    return cfg.validate()


def run_preset(name: str, out: str | Path | None = None, *, overwrite: bool = False, progress: bool = True,
               **overrides) -> Path:
    """Train, evaluate and certify a preset; returns the run folder (default results/runs/<preset>-<hash>/).

    Overrides: `seeds=N` (seeds 0..N−1) or a sequence of seeds, `env="hopper"`, a section dict such as
    `ppo={"num_updates": 10}`, or one field as `ppo__num_updates=10` (or `**{"ppo.num_updates": 10}`).
    Invalid overrides raise ConfigError before anything compiles.
    """
    from robustprune.study import run_study

    return run_study(configure(name, **overrides), out, overwrite=overwrite, progress=progress)


def load_run(path: str | Path, *more: str | Path) -> RunTables:
    """Load one run folder (with its `shards/host_*/` folders), or merge several, into a RunTables."""
    return load_runs([path, *more])


def summarize(run: RunTables | str | Path) -> pd.DataFrame:
    """Per setting × attack × norm × ε: seeds, median agent, mean and IQM of raw return and normalized score,
    with 95% stratified bootstrap intervals across seeds (the `worst` attack is the worst case over the suite)."""
    if not isinstance(run, RunTables):
        run = load_run(run)
    return summarize_run(run)
