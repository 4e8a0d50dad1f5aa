"""Seed-level statistics: IQM, stratified bootstrap confidence intervals and the median agent.

Source of the aggregate metrics: Agarwal et al., 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice". The IQM is the mean of the middle 50% of scores (25% trimmed from each end, as
`scipy.stats.trim_mean(x, 0.25)`). Confidence intervals are percentile intervals of a stratified bootstrap:
scores are resampled with replacement within each stratum (here a stratum is one setting, or one
environment when settings are pooled), so every stratum keeps its number of seeds.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along `axis`: sort, drop ⌊0.25·n⌋ scores from each end, and average the rest.

    Matches `scipy.stats.trim_mean(scores, 0.25, axis)`. With fewer than 4 scores nothing is dropped.
    """
    scores = np.sort(np.asarray(scores, dtype=float), axis=axis)
    n = scores.shape[axis]
    cut = int(0.25 * n)
    return np.take(scores, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def mean(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(scores, dtype=float).mean(axis=axis)


STATISTICS = {"mean": mean, "iqm": iqm}


def bootstrap_indices(rng: np.random.Generator, strata: np.ndarray, resamples: int) -> np.ndarray:
    """Stratified bootstrap indices [resamples, n]: within each stratum, draw its size with replacement.

    Column j of the result holds indices from the stratum of element j, so every resample keeps the stratum
    sizes (and their order) of the input.
    """
    strata = np.asarray(strata)
    out = np.empty((resamples, len(strata)), dtype=np.int64)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        out[:, members] = members[rng.integers(0, len(members), size=(resamples, len(members)))]
    return out


def bootstrap_ci(scores, statistic: str = "iqm", *, strata=None, resamples: int = DEFAULT_RESAMPLES,
                 confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of `statistic` ('mean' or 'iqm') over `scores` [n].

    With `strata` [n], the bootstrap is stratified and the statistic is computed over all pooled scores
    (for the IQM of normalized scores across environments). The same `seed` gives the same interval.
    Returns (estimate, low, high); all NaN for an empty input, and low = high = estimate for one score.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        return (np.nan, np.nan, np.nan)
    fn = STATISTICS[statistic]
    estimate = float(fn(scores))
    if scores.size == 1:
        return (estimate, estimate, estimate)
    strata = np.zeros(scores.size, dtype=int) if strata is None else np.asarray(strata)
    rng = np.random.default_rng(seed)
    draws = fn(scores[bootstrap_indices(rng, strata, resamples)], axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return (estimate, float(low), float(high))


def median_agent_position(ranking: np.ndarray) -> int:
    """Index of the median agent by `ranking` (ascending; ties keep input order).

    With an even number of agents, the lower of the two middle agents, as published robustness tables do.
    """
    order = np.argsort(np.asarray(ranking, dtype=float), kind="stable")
    return int(order[(len(order) - 1) // 2])


def describe(values, *, prefix: str, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """Mean and IQM, each with a 95% bootstrap interval across seeds, as a flat dict keyed `<prefix>_<stat>`."""
    values = np.asarray(values, dtype=float)
    out = {}
    for stat in ("mean", "iqm"):
        est, low, high = bootstrap_ci(values, stat, resamples=resamples, seed=seed)
        out.update({f"{prefix}_{stat}": est, f"{prefix}_{stat}_low": low, f"{prefix}_{stat}_high": high})
    return out


def group_seed(keys) -> int:
    """A deterministic bootstrap seed per group (CRC32 of its keys), independent of the other groups."""
    text = "|".join(str(k) for k in (keys if isinstance(keys, tuple) else (keys,)))
    return zlib.crc32(text.encode())


def summarize_groups(frame: pd.DataFrame, by: list[str], value: str, *, rank: str | None = None,
                     resamples: int = DEFAULT_RESAMPLES) -> pd.DataFrame:
    """Per group of `by`: number of seeds, median agent (ranked by `rank`, default `value`), mean and IQM with CIs.

    `frame` holds one row per seed and group. The median agent's seed and its `value` are reported as
    `median_seed` and `<value>_median_agent`.
    """
    rank = rank or value
    rows = []
    for keys, group in frame.groupby(by, sort=True, dropna=False):
        group = group.sort_values("seed", kind="mergesort")
        pos = median_agent_position(group[rank].to_numpy())
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,)))
        row.update({"seeds": len(group), "median_seed": int(group.seed.iloc[pos]),
                    f"{value}_median_agent": float(group[value].iloc[pos])})
        row.update(describe(group[value].to_numpy(), prefix=value, resamples=resamples, seed=group_seed(keys)))
        rows.append(row)
    return pd.DataFrame(rows)
