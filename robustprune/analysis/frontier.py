"""Pareto front of clean return against worst-case return, across sparsities and schedules.

Each point is a (sparsity, schedule, other non-grouping settings) combination, placed at its seed means of
clean and worst-case return at one ε. A point is on the front when no other point of its group is at least
as good in both returns and strictly better in one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustprune.analysis.tables import SPARSITY_COLUMN

FRONT_AXES = (SPARSITY_COLUMN, "schedule")


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean [n]: True where point i is not dominated (maximizing both x and y). Duplicates all stay."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    better_eq = (x[None, :] >= x[:, None]) & (y[None, :] >= y[:, None])
    strictly = (x[None, :] > x[:, None]) | (y[None, :] > y[:, None])
    return ~np.any(better_eq & strictly, axis=1)


def frontier_table(agents: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Seed means of clean and worst-case return per setting and ε > 0, with `on_front` per group.

    A group is every setting except sparsity and schedule, plus norm and ε. Columns: settings, norm, eps,
    seeds, clean_return, worst_return, on_front.
    """
    table = agents[agents.eps > 0]
    points = table.groupby(settings + ["norm", "eps"], sort=True, dropna=False).agg(
        seeds=("seed", "size"), clean_return=("clean_return", "mean"), worst_return=("worst_return", "mean"),
    ).reset_index()
    group_by = [c for c in settings if c not in FRONT_AXES] + ["norm", "eps"]
    points["on_front"] = False
    for _, group in points.groupby(group_by, sort=True, dropna=False):
        points.loc[group.index, "on_front"] = pareto_mask(group.clean_return.to_numpy(), group.worst_return.to_numpy())
    return points
