"""`robustprune certify RUN_DIR`: recompute a run folder's certificates from its saved parameters.

The run saved every cell's final parameters, masks and normalizer under `checkpoints/final` (one tree with a
leading cell axis per network shape). `recertify` restores them against a target traced from the run's own
config, rebuilds the victims, and writes `certificates.csv`, `certificates_path.csv`, `certify.json` and the
certificate figures, without training. The numbers equal the run's, because the certificates use one fixed
key for every cell. `certify_summary` is what run.json and certify.json record.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from robustprune.config import ConfigError, StudyConfig

logger = logging.getLogger(__name__)

FINAL_KEYS = ("params", "masks", "normalizer", "diverged_at")


def _final_target(cfg: StudyConfig, members: list) -> dict:
    """Build zero arrays shaped like the saved final tree of `members`, traced from the config (no compile)."""
    from robustprune.grid import cell_params, grid_programs

    state = jax.eval_shape(grid_programs(cfg)[0], cell_params(cfg, members))
    tree = {key: getattr(state, key) for key in FINAL_KEYS}
    return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), tree)


def load_final(run_dir: Path, cfg: StudyConfig) -> list[tuple[StudyConfig, list, dict]]:
    """Restore `run_dir/checkpoints/final` as (group config, group cells, tree) per network shape.

    Raises ConfigError when the folder has no final checkpoint, or when it does not match the config.
    """
    from robustprune.cell_groups import network_groups
    from robustprune.grid import expand_cells
    from robustprune.results import load_checkpoint

    path = Path(run_dir) / "checkpoints" / "final"
    if not path.is_dir():
        hint = " Multi-host runs keep them under shards/host_<i>/checkpoints/final; certify each shard folder." \
            if (Path(run_dir) / "shards").is_dir() and any(Path(run_dir).glob("shards/host_*/checkpoints")) else ""
        raise ConfigError(f"{run_dir} has no checkpoints/final: its trained parameters were not saved (an "
                          f"unfinished run, or a folder copied without checkpoints). Rerun `robustprune run` with "
                          f"the same --out to finish it.{hint}")
    groups = network_groups(cfg, expand_cells(cfg))
    targets = [_final_target(group_cfg, members) for group_cfg, members in groups]
    target = targets[0] if len(groups) == 1 else {f"group_{j}": t for j, t in enumerate(targets)}
    try:
        restored = load_checkpoint(path, target)
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} does not match the config in {run_dir}/run.json ({err}). Was the folder "
                          "written by another robustprune version? Rerun the study to certify it.") from err
    trees = [restored] if len(groups) == 1 else [restored[f"group_{j}"] for j in range(len(groups))]
    return [(group_cfg, members, tree) for (group_cfg, members), tree in zip(groups, trees)]


def certify_trees(cfg: StudyConfig, groups: list[tuple[StudyConfig, list, dict]]) -> dict[str, pd.DataFrame]:
    """Certify restored cells (see `load_final`). Tables use global cell ids, and diverged cells get NaN values."""
    from robustprune.attack_eval import prepare_victims
    from robustprune.certify_run import certify_cells
    from robustprune.envs import make_base_env
    from robustprune.evaluate import make_victim
    from robustprune.runner import canonical_order, relabel_chunk

    action_size = make_base_env(cfg.env.name, cfg.env.backend).action_size
    parts = []
    for group_cfg, members, tree in groups:
        victims = make_victim(group_cfg, tree["params"], tree["normalizer"], action_size)
        tables = certify_cells(group_cfg, prepare_victims(group_cfg, victims, members), members)
        parts.append(relabel_chunk(tables, members, len(members), np.asarray(tree["diverged_at"])))
    return {name: canonical_order(name, pd.concat([p[name] for p in parts], ignore_index=True))
            for name in parts[0]}


def _increase_fraction(values: np.ndarray, rtol: float) -> tuple[int, int]:
    """Count (rises, steps) of a series ordered by sparsity, after dropping NaN entries."""
    values = values[~np.isnan(values)]
    return int(np.sum(values[1:] > values[:-1] * (1 + rtol))), max(len(values) - 1, 0)


def trained_increase_fractions(cells: pd.DataFrame, certificates: pd.DataFrame) -> dict[str, float | None]:
    """Return, per global bound, the share of sparsity steps where it rose across trained cells, as observed.

    Each seed × schedule × method × allocation family is ordered by target sparsity, starting from the seed's
    dense cell. These are different networks (pruned during training), so no direction is expected.
    """
    from robustprune.certify_run import PATH_RTOL

    table = certificates[certificates.scope == "global"].drop_duplicates(["cell_id", "bound"])
    table = table.merge(cells, on="cell_id")
    plain = table[table["capacity_of"] == 0] if "capacity_of" in table else table
    dense, pruned = plain[plain.sparsity_target == 0], plain[plain.sparsity_target > 0]
    out = {}
    for bound in sorted(table.bound.unique()):
        rises = steps = 0
        for _, family in pruned[pruned.bound == bound].groupby(["seed", "schedule", "method", "allocation"]):
            start = dense[(dense.bound == bound) & (dense.seed == family.seed.iloc[0])]
            series = pd.concat([start, family]).sort_values("sparsity_target").lipschitz.to_numpy(float)
            r, s = _increase_fraction(series, PATH_RTOL)
            rises, steps = rises + r, steps + s
        out[bound] = rises / steps if steps else None
    return out


def certify_summary(cfg: StudyConfig, cells: pd.DataFrame, certificates: pd.DataFrame,
                    path: pd.DataFrame | None) -> dict:
    """Build the certify section of run.json: settings, median tightness and monotonicity along the paths."""
    from robustprune.certify_run import path_sparsities

    eps_max = float(max(cfg.eval.eps))
    at_max = certificates[np.isclose(certificates.eps, eps_max)]
    summary = {
        "tau": cfg.certify.tau,
        "states_per_cell": int(certificates.num_states.iloc[0]) if len(certificates) else 0,
        "pgd": {"steps": cfg.certify.pgd_steps, "restarts": cfg.certify.pgd_restarts},
        "value_gap_policy": "stochastic (Gaussian); compare with stochastic-policy returns, not the "
                            "deterministic evaluation",
        "median_tightness_at_max_eps": {
            bound: (None if g.tightness.isna().all() else float(g.tightness.median()))
            for bound, g in at_max.groupby("bound")},
        "eps_of_tightness": eps_max,
        "trained_cells_increase_fraction": trained_increase_fractions(cells, certificates),
    }
    if path is not None and len(path):
        steps = path[path.sparsity > 0]
        fractions = {bound: float(g.rose.astype(bool).mean()) for bound, g in steps.groupby("bound")}
        summary["post_training_path"] = {
            "sparsities": list(path_sparsities(cfg)),
            "dense_cells": int(path.cell_id.nunique()),
            "increase_fraction": fractions,
            "spectral_increase_fraction": fractions.get("spectral_product"),
        }
    return summary


def recertify(run_dir: str | Path, out: str | Path | None = None, *, tau: float | None = None) -> Path:
    """Recompute the certificates of a run folder from its checkpoint and write them to `out` (default: the
    run folder itself). Returns the output folder. Raises ConfigError for a folder that cannot be certified.
    """
    import dataclasses

    from robustprune.certify_run import check_certificates
    from robustprune.plots import write_certify_figures
    from robustprune.results import package_versions, write_csv, write_json
    from robustprune.study import check_soundness

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise ConfigError(f"{run_dir} has no run.json: it is not a robustprune run folder. Pass a folder "
                          "written by `robustprune run`.")
    cfg = StudyConfig.from_dict(json.loads((run_dir / "run.json").read_text())["config"])
    if tau is not None:
        cfg = dataclasses.replace(cfg, certify=dataclasses.replace(cfg.certify, tau=tau))
    cfg = cfg.validate()
    out = Path(out) if out is not None else run_dir
    start = time.perf_counter()
    groups = load_final(run_dir, cfg)
    tables = certify_trees(cfg, groups)
    seconds = time.perf_counter() - start
    cells = pd.read_csv(run_dir / "cells.csv")
    evaluations = pd.read_csv(run_dir / "evaluations.csv") if (run_dir / "evaluations.csv").is_file() else None
    check_certificates(tables["certificates"], tables["certificates_path"])
    if evaluations is not None:
        check_soundness(evaluations, tables["certificates"])
    for name, table in tables.items():
        write_csv(out / f"{name}.csv", table)
    write_certify_figures(out, cells, evaluations, tables["certificates"], tables["certificates_path"])
    record = {"run_dir": str(run_dir), "command": " ".join(sys.argv), "certify_s": seconds,
              "versions": package_versions(), "devices": [str(d) for d in jax.devices()],
              **certify_summary(cfg, cells, tables["certificates"], tables["certificates_path"])}
    write_json(out / "certify.json", record)
    logger.info("Certified %d cells in %.1f s; wrote %s", len(cells), seconds, out)
    return out
