"""Per-setting statistics of a run: median agent, mean and IQM with bootstrap intervals, raw and normalized.

A setting here is the cells' setting columns (see `tables.setting_columns`) plus the attack, the norm and ε.
The `worst` attack is the worst case over the attack suite at that ε. Every agent (seed) is ranked by its
worst-case return at the row's ε, and the median agent is reported as published robustness tables do (the
lower middle agent when the number of seeds is even). At ε = 0 every attack is the identity, so the
ranking is by clean return.

Normalized score = return / (median clean return of the dense cells of the same environment and preset), so
the dense policy's median agent scores 1. When that median is not positive the score is undefined (NaN).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from robustprune.analysis.stats import DEFAULT_RESAMPLES, describe, group_seed, median_agent_position
from robustprune.analysis.tables import (
    CLEAN_ATTACK,
    SEED_COLUMN,
    SPARSITY_COLUMN,
    WORST_ATTACK,
    RunTables,
    agent_table,
    clean_returns,
    key_columns,
    reference_dense,
    setting_columns,
    worst_case,
)

logger = logging.getLogger(__name__)

NORMALIZER_COLUMNS = ("env", "preset")


def normalizer_columns(cells: pd.DataFrame) -> list[str]:
    """Columns that define a normalization group: environment and preset (those present)."""
    return [c for c in NORMALIZER_COLUMNS if c in cells.columns]


def dense_reference(run: RunTables) -> pd.DataFrame:
    """Median clean return of the dense (sparsity 0) cells per environment and preset: `dense_clean_median`."""
    by = normalizer_columns(run.cells)
    keys = key_columns(run.cells)
    clean = run.cells.merge(clean_returns(run.evaluations), on=keys)
    dense = clean[reference_dense(clean)]
    ref = dense.groupby(by, sort=True).clean_return.median().rename("dense_clean_median").reset_index()
    bad = ref[~(ref.dense_clean_median > 0)]
    if len(bad):
        logger.warning("Dense median clean return is not positive for %s: normalized scores are NaN there.",
                       bad[by].to_dict("records"))
    ref.loc[~(ref.dense_clean_median > 0), "dense_clean_median"] = np.nan
    return ref


def long_returns(run: RunTables) -> pd.DataFrame:
    """One row per cell, attack (including `worst`), norm and ε: settings, seed, return, rank_return, score.

    `rank_return` is the cell's worst-case return at the same ε (its clean return at ε = 0 when no attack
    was run there), by which median agents are chosen.
    """
    keys = key_columns(run.cells)
    settings = setting_columns(run.cells)
    worst = worst_case(run.evaluations)
    attacks = run.evaluations[~run.evaluations.attack.isin([WORST_ATTACK])]
    attacks = attacks[keys + ["attack", "norm", "eps", "return_mean"]]
    worst_rows = worst.assign(attack=WORST_ATTACK).rename(columns={"worst_return": "return_mean"})
    rows = pd.concat([attacks, worst_rows[keys + ["attack", "norm", "eps", "return_mean", "worst_attack"]]],
                     ignore_index=True)
    rank = worst[keys + ["norm", "eps", "worst_return"]].rename(columns={"worst_return": "rank_return"})
    rows = rows.merge(rank, on=keys + ["norm", "eps"], how="left")
    rows["rank_return"] = rows.rank_return.fillna(rows.return_mean)
    table = run.cells[keys + settings + [SEED_COLUMN]].merge(rows, on=keys)
    table = table.merge(dense_reference(run), on=normalizer_columns(run.cells), how="left")
    table["score"] = table.return_mean / table.dense_clean_median
    return table


def summarize_run(run: RunTables, *, resamples: int = DEFAULT_RESAMPLES) -> pd.DataFrame:
    """The per-setting statistics table, one row per setting × attack × norm × ε, sorted.

    Columns: settings, attack, norm, eps, seeds, median_seed, worst_attack of the median agent (worst rows),
    return_median_agent, return_mean[_low, _high], return_iqm[_low, _high], and the same for `score`
    (normalized). Intervals are 95% percentile bootstrap intervals across seeds.
    """
    settings = setting_columns(run.cells)
    by = settings + ["attack", "norm", "eps"]
    table = long_returns(run)
    rows = []
    for keys, group in table.groupby(by, sort=True, dropna=False):
        group = group.sort_values(SEED_COLUMN, kind="mergesort")
        pos = median_agent_position(group.rank_return.to_numpy())
        row = dict(zip(by, keys))
        row.update({
            "seeds": len(group),
            "median_seed": int(group[SEED_COLUMN].iloc[pos]),
            "median_rule": "lower middle" if len(group) % 2 == 0 else "middle",
            "worst_attack": group.worst_attack.iloc[pos] if keys[-3] == WORST_ATTACK else "",
            "return_median_agent": float(group.return_mean.iloc[pos]),
            "score_median_agent": float(group.score.iloc[pos]),
        })
        seed = group_seed(keys)
        row.update(describe(group.return_mean.to_numpy(), prefix="return", resamples=resamples, seed=seed))
        row.update(describe(group.score.to_numpy(), prefix="score", resamples=resamples, seed=seed))
        rows.append(row)
    out = pd.DataFrame(rows)
    return _order_attacks(out, settings)


def _order_attacks(frame: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Sort by settings, then clean first and worst last among attacks, then norm and ε."""
    order = frame.attack.map(lambda a: 0 if a == CLEAN_ATTACK else (2 if a == WORST_ATTACK else 1))
    frame = frame.assign(_order=order)
    frame = frame.sort_values(settings + ["_order", "attack", "norm", "eps"], kind="mergesort")
    return frame.drop(columns="_order").reset_index(drop=True)


def agents_with_scores(run: RunTables) -> pd.DataFrame:
    """`agent_table` plus normalized clean and worst-case scores (`clean_score`, `worst_score`)."""
    table = agent_table(run).merge(dense_reference(run), on=normalizer_columns(run.cells), how="left")
    table["clean_score"] = table.clean_return / table.dense_clean_median
    table["worst_score"] = table.worst_return / table.dense_clean_median
    return table
