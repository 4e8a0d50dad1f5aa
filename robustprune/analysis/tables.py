"""Load and merge run folders, and reshape their long tables into one row per cell and ε.

A *setting* is everything that defines a grid point except the seed: the preset, environment, schedule,
target sparsity, and any further setting column a newer `cells.csv` carries (for example `method`). The
setting columns of a cells table are found by `setting_columns`. Worst cases over the attack suite come from
`worst` rows of `evaluations.csv` when it has them (with their `worst_attack` column), and are computed from
the per-attack rows otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from robustprune.config import ConfigError

logger = logging.getLogger(__name__)

ID_COLUMNS = ("run", "cell_id")
SEED_COLUMN = "seed"
SPARSITY_COLUMN = "sparsity_target"
CLEAN_ATTACK = "none"
WORST_ATTACK = "worst"
# Attacks outside the worst case: transfer attacks (perturbations crafted on another policy) are reported,
# but the published suite's minimum does not include them.
NOT_IN_WORST_PREFIXES = ("transfer_",)
# Columns of cells.csv that are measurements, not settings. Extend this tuple when cells.csv gains one.
MEASUREMENT_COLUMNS = ("sparsity_achieved", "sparsity_per_layer", "critic_sparsity_achieved", "train_return")
# Float columns of cells.csv that are settings. Other float columns are treated as measurements.
FLOAT_SETTING_COLUMNS = (SPARSITY_COLUMN, "learning_rate", "start_frac", "end_frac")
TABLE_NAMES = ("cells", "evaluations", "certificates")


@dataclasses.dataclass
class RunTables:
    """The tables of one run folder, or of several merged ones.

    `cells`, `evaluations` and `certificates` are the CSV tables (pandas DataFrames), with a `run` column
    when merged sources reused cell ids and a `preset` column taken from each run.json. `run` is the first
    source's run.json, and `runs` maps each source label to its run.json.
    """

    cells: pd.DataFrame
    evaluations: pd.DataFrame
    certificates: pd.DataFrame
    run: dict
    runs: dict[str, dict]
    sources: list[str]


def _read_source(folder: Path, run: dict | None) -> dict:
    missing = [n for n in TABLE_NAMES if not (folder / f"{n}.csv").exists()]
    if missing:
        raise ConfigError(f"{folder} lacks {', '.join(m + '.csv' for m in missing)}: not a complete run folder or "
                          "shard. Rerun `robustprune run` into it, or pass the folder that contains these files.")
    tables = {n: pd.read_csv(folder / f"{n}.csv") for n in TABLE_NAMES}
    run_json = folder / "run.json"
    tables["run"] = json.loads(run_json.read_text()) if run_json.exists() else (run or {})
    return tables


def _sources(run_dir: Path) -> list[tuple[str, Path]]:
    """The folders holding CSV tables under a run folder: itself and/or `shards/host_*/`, sorted."""
    found = [(run_dir.name, run_dir)] if (run_dir / "cells.csv").exists() else []
    for shard in sorted((run_dir / "shards").glob("host_*")):
        if shard.is_dir():
            found.append((f"{run_dir.name}/shards/{shard.name}", shard))
    if not found:
        raise ConfigError(f"{run_dir} contains no cells.csv and no shards/host_*/cells.csv: it is not a robustprune "
                          "run folder. Pass a folder written by `robustprune run`.")
    return found


def load_runs(paths) -> RunTables:
    """Load and merge run folders (each with its host shards). Paths are used in the given order.

    Tables are concatenated. If two sources reuse a cell id, a `run` column (the source's label, e.g.
    `myrun/shards/host_1`) keeps cells apart; it identifies cells but is not a setting, so shards of one
    study still pair dense and pruned cells by seed. Raises ConfigError if two sources hold the same
    setting and seed, which would make seed pairing ambiguous.
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise ConfigError("no run folder given: pass at least one folder written by `robustprune run`.")
    loaded, runs = [], {}
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"run folder {str(path)!r} does not exist. Pass a folder written by `robustprune run`.")
        top = json.loads((path / "run.json").read_text()) if (path / "run.json").exists() else None
        for label, folder in _sources(path):
            tables = _read_source(folder, top)
            runs[label] = tables["run"]
            preset = tables["run"].get("config", {}).get("name", "unknown")
            for name in TABLE_NAMES:
                tables[name] = tables[name].assign(run=label)
            if "preset" not in tables["cells"]:
                tables["cells"]["preset"] = preset
            loaded.append(tables)
    merged = {n: pd.concat([t[n] for t in loaded], ignore_index=True) for n in TABLE_NAMES}
    collide = merged["cells"].cell_id.duplicated().any()
    if not collide:
        merged = {n: t.drop(columns="run") for n, t in merged.items()}
    _check_unique_seeds(merged["cells"])
    first = next(iter(runs.values()))
    return RunTables(merged["cells"], merged["evaluations"], merged["certificates"], first, runs, list(runs))


def _check_unique_seeds(cells: pd.DataFrame) -> None:
    keys = setting_columns(cells) + [SEED_COLUMN]
    dup = cells[cells.duplicated(keys, keep=False)]
    if len(dup):
        raise ConfigError(
            f"{len(dup)} cells share a setting and seed across the merged folders, e.g.\n"
            f"{dup[keys + [c for c in ID_COLUMNS if c in dup]].head().to_string(index=False)}\n"
            "Pass each run once, or merge only runs with different seeds or presets."
        )


def setting_columns(cells: pd.DataFrame) -> list[str]:
    """Columns of a cells table that define a setting: all but ids, seed, and measurement columns.

    String, integer and boolean columns are settings; float columns are settings only if listed in
    FLOAT_SETTING_COLUMNS. The order follows the table, so results are deterministic.
    """
    out = []
    for col in cells.columns:
        if col in ID_COLUMNS or col == SEED_COLUMN or col in MEASUREMENT_COLUMNS:
            continue
        if pd.api.types.is_float_dtype(cells[col]) and col not in FLOAT_SETTING_COLUMNS:
            continue
        out.append(col)
    return out


def key_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that identify a cell in a (possibly merged) table: `run` if present, and `cell_id`."""
    return [c for c in ID_COLUMNS if c in frame.columns]


def worst_case(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The worst case per cell and ε: the minimum `return_mean` over the attacks other than `none`.

    Transfer attacks (names starting with `transfer_`) are left out, as the published suite leaves them out.
    Uses the `worst` rows (and their `worst_attack`) when the table has them. Otherwise computes, for every
    cell, norm and ε, the attack with the lowest mean return (ties: the first attack in sorted order).
    Returns columns: key columns, norm, eps, worst_return, worst_attack, tv_empirical (the largest over attacks).
    """
    keys = key_columns(evaluations) + ["norm", "eps"]
    attacked = evaluations[~evaluations.attack.isin([CLEAN_ATTACK, WORST_ATTACK])
                           & ~evaluations.attack.str.startswith(NOT_IN_WORST_PREFIXES)]
    tv = attacked.groupby(keys, sort=True).tv_empirical.max().rename("tv_empirical")
    if (evaluations.attack == WORST_ATTACK).any() and "worst_attack" in evaluations:
        rows = evaluations[evaluations.attack == WORST_ATTACK]
        out = rows[keys + ["return_mean", "worst_attack"]].rename(columns={"return_mean": "worst_return"})
    else:
        ordered = attacked.sort_values(keys + ["return_mean", "attack"], kind="mergesort")
        first = ordered.groupby(keys, sort=True).head(1)
        out = first[keys + ["return_mean", "attack"]].rename(
            columns={"return_mean": "worst_return", "attack": "worst_attack"})
    out = out.merge(tv.reset_index(), on=keys, how="left")
    return out.sort_values(keys, kind="mergesort").reset_index(drop=True)


def clean_returns(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The clean return of every cell (attack `none`; the mean over its ε rows, which are all 0)."""
    keys = key_columns(evaluations)
    clean = evaluations[evaluations.attack == CLEAN_ATTACK]
    if clean.empty:
        raise ConfigError("evaluations.csv has no rows with attack='none': the clean return is unknown. "
                          "Rerun with 'none' in eval.attacks.")
    return clean.groupby(keys, sort=True).return_mean.mean().rename("clean_return").reset_index()


def tightest_tv_bound(certificates: pd.DataFrame) -> pd.DataFrame:
    """The tightest sound certified TV bound per cell, norm and ε, and the bound that achieved it.

    All global bounds written by `run_study` are sound (the spectral one uses an exact SVD); rows with a
    `sound` column equal to False are skipped. Returns key columns, norm, eps, tv_bound, tv_bound_name.
    """
    keys = key_columns(certificates) + ["norm", "eps"]
    rows = certificates if "sound" not in certificates else certificates[certificates["sound"].astype(bool)]
    ordered = rows.sort_values(keys + ["tv_bound", "bound"], kind="mergesort")
    first = ordered.groupby(keys, sort=True).head(1)
    out = first[keys + ["tv_bound", "bound"]].rename(columns={"bound": "tv_bound_name"})
    return out.sort_values(keys, kind="mergesort").reset_index(drop=True)


def agent_table(run: RunTables) -> pd.DataFrame:
    """One row per cell and attacked ε: settings, seed, clean and worst-case returns, empirical and certified TV.

    Columns: key columns, setting columns, seed, norm, eps, clean_return, worst_return, worst_attack,
    tv_empirical, tv_bound, tv_bound_name.
    """
    cells = run.cells
    keys = key_columns(cells)
    settings = setting_columns(cells)
    base = cells[keys + settings + [SEED_COLUMN]]
    table = base.merge(clean_returns(run.evaluations), on=keys, how="inner")
    table = table.merge(worst_case(run.evaluations), on=keys, how="inner")
    if not run.certificates.empty:
        table = table.merge(tightest_tv_bound(run.certificates), on=keys + ["norm", "eps"], how="left")
    else:
        table["tv_bound"], table["tv_bound_name"] = np.nan, ""
    return table.sort_values(settings + ["norm", "eps", SEED_COLUMN] + keys, kind="mergesort").reset_index(drop=True)


def reference_dense(table: pd.DataFrame) -> pd.Series:
    """Mask of the dense reference cells: sparsity 0, and not a capacity control (`capacity_of` empty)."""
    mask = table[SPARSITY_COLUMN] == 0.0
    if "capacity_of" in table:
        mask &= table["capacity_of"].isna() | (table["capacity_of"].astype(str).isin(["", "nan", "None"]))
    return mask


def expand_dense(table: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Give every pruned setting its dense baseline, for seed-paired comparisons.

    A study may train its dense cells once per seed, with a placeholder in pruning-only columns (for example
    a schedule of `none`) that no pruned cell shares. For each setting column (but sparsity) whose pruned
    values do not all occur among the dense cells, the dense rows are copied once per combination of the
    pruned cells' values in those columns. Tables whose dense cells already match are returned unchanged.
    """
    dense_mask = table[SPARSITY_COLUMN] == 0.0
    dense, pruned = table[dense_mask], table[~dense_mask]
    if dense.empty or pruned.empty:
        return table
    cols = [c for c in settings if c != SPARSITY_COLUMN and not set(pruned[c].unique()) <= set(dense[c].unique())]
    if not cols:
        return table
    copies = dense.drop(columns=cols).merge(pruned[cols].drop_duplicates(), how="cross")[table.columns]
    return pd.concat([copies, pruned], ignore_index=True)
