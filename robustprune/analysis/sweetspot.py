"""Sweet spots: sparsities whose worst-case return beats the dense policy's while the clean return holds.

Rule, per setting group (all settings but sparsity), norm and ε > 0, over the seeds present at every
sparsity of the group (seed-paired):
1. d_s = worst-case return at sparsity s minus the dense cell's, per seed; c_s likewise for the clean return.
2. A paired bootstrap (seeds resampled with replacement, the same draws for every s, the spread of the
   resampled means rescaled by √(n/(n − 1))) gives the mean of d_s, a two-sided bootstrap p-value, and
   percentile intervals.
3. Holm's step-down correction over the k sparsities tested: in order of p, sparsity number r (from 0)
   is tested at level α/(k − r), and testing stops at the first failure. Its interval is reported at that
   level (`worst_diff_low_holm`, `worst_diff_high_holm`).
4. s is a sweet spot if the Holm test rejects, its Holm interval lies above zero, and the 95% interval of
   the clean difference c_s includes zero or lies above it (upper end ≥ 0).
Reproducibility: the fraction of bootstrap resamples of the seeds in which the whole rule, rerun on the
resampled seeds, again calls s a sweet spot.

NOTE: percentile bootstrap intervals are too narrow for few seeds, so groups with fewer than `min_seeds`
paired seeds are reported as untestable rather than tested.

The paper's criterion: the sparsity maximizing the seed mean of (normalized clean + normalized worst-case)/2.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from robustprune.analysis.stats import group_seed
from robustprune.analysis.tables import SEED_COLUMN, SPARSITY_COLUMN

ALPHA = 0.05
MIN_SEEDS = 5


@dataclasses.dataclass(frozen=True)
class SweetSpotRule:
    """Knobs of the rule: family-wise error rate α, bootstrap resamples, reproducibility resamples, seeds."""

    alpha: float = ALPHA
    resamples: int = 2000
    reproducibility_resamples: int = 200
    reproducibility_inner_resamples: int = 500
    min_seeds: int = MIN_SEEDS


def _pvalues(boot: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-values [k] from bootstrap means [B, k]: 2·min(P(d* ≤ 0), P(d* ≥ 0))."""
    count = boot.shape[0]
    below = ((boot <= 0).sum(axis=0) + 1) / (count + 1)
    above = ((boot >= 0).sum(axis=0) + 1) / (count + 1)
    return np.minimum(1.0, 2.0 * np.minimum(below, above))


def _rescaled_means(diffs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Bootstrap means [B, k] of paired differences [k, n], spread rescaled by √(n/(n − 1)).

    The plain bootstrap variance of a mean is s²(n − 1)/n², too small by the factor (n − 1)/n; rescaling the
    resampled means around the sample mean restores the unbiased s²/n, which matters at 5–15 seeds.
    """
    n = diffs.shape[1]
    center = diffs.mean(axis=1)
    return (center[:, None] + np.sqrt(n / max(n - 1, 1)) * (diffs[:, idx].mean(axis=-1) - center[:, None])).T


def holm(pvalues: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holm's step-down procedure. Returns (rejected [k], adjusted p [k], per-test level α/(k − rank) [k])."""
    k = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    levels = np.empty(k)
    levels[order] = alpha / (k - np.arange(k))
    adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, (k - np.arange(k)) * pvalues[order]))
    adjusted = np.empty(k)
    adjusted[order] = adjusted_sorted
    passed_sorted = np.cumprod(pvalues[order] <= levels[order]).astype(bool)
    rejected = np.empty(k, dtype=bool)
    rejected[order] = passed_sorted
    return rejected, adjusted, levels


def paired_test(worst: np.ndarray, clean: np.ndarray, rng: np.random.Generator, rule: SweetSpotRule,
                resamples: int | None = None) -> dict[str, np.ndarray]:
    """Apply steps 1–4 to arrays [k + 1, n] whose row 0 is the dense policy and rows 1.. the sparsities."""
    resamples = resamples or rule.resamples
    n = worst.shape[1]
    idx = rng.integers(0, n, size=(resamples, n))
    d, c = worst[1:] - worst[:1], clean[1:] - clean[:1]
    boot_d, boot_c = _rescaled_means(d, idx), _rescaled_means(c, idx)  # [B, k]
    pvalues = _pvalues(boot_d)
    rejected, adjusted, levels = holm(pvalues, rule.alpha)
    low_holm = np.array([np.quantile(boot_d[:, j], levels[j] / 2) for j in range(d.shape[0])])
    high_holm = np.array([np.quantile(boot_d[:, j], 1 - levels[j] / 2) for j in range(d.shape[0])])
    low, high = np.quantile(boot_d, [0.025, 0.975], axis=0)
    clean_low, clean_high = np.quantile(boot_c, [0.025, 0.975], axis=0)
    sweet = rejected & (low_holm > 0) & (clean_high >= 0)
    return {"worst_diff": d.mean(axis=1), "worst_diff_low": low, "worst_diff_high": high, "p_value": pvalues,
            "p_holm": adjusted, "holm_level": levels, "worst_diff_low_holm": low_holm,
            "worst_diff_high_holm": high_holm, "clean_diff": c.mean(axis=1), "clean_diff_low": clean_low,
            "clean_diff_high": clean_high, "sweet_spot": sweet}


def reproducibility(worst: np.ndarray, clean: np.ndarray, rng: np.random.Generator, rule: SweetSpotRule) -> np.ndarray:
    """Fraction [k] of seed resamples in which each sparsity is again a sweet spot under the whole rule."""
    n = worst.shape[1]
    hits = np.zeros(worst.shape[0] - 1)
    for _ in range(rule.reproducibility_resamples):
        idx = rng.integers(0, n, size=n)
        result = paired_test(worst[:, idx], clean[:, idx], rng, rule, rule.reproducibility_inner_resamples)
        hits += result["sweet_spot"]
    return hits / rule.reproducibility_resamples


def _matrices(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pivot a group to [sparsities, seeds] over the seeds present at every sparsity (dense first)."""
    worst = group.pivot_table(index=SPARSITY_COLUMN, columns=SEED_COLUMN, values="worst_return").dropna(axis=1)
    clean = group.pivot_table(index=SPARSITY_COLUMN, columns=SEED_COLUMN, values="clean_return")[worst.columns]
    return worst.index.to_numpy(), worst.columns.to_numpy(), worst.to_numpy(), clean.to_numpy()


def sweet_spots(agents: pd.DataFrame, group_by: list[str], rule: SweetSpotRule = SweetSpotRule()) -> pd.DataFrame:
    """Test every non-zero sparsity of every group of `group_by` (settings but sparsity, norm, eps) at ε > 0.

    `agents` has one row per cell and ε with clean_return and worst_return (see `agent_table`). Returns one
    row per group and sparsity with the columns of `paired_test`, `reproducibility`, `seeds` and `status`.
    """
    rows = []
    for keys, group in agents[agents.eps > 0].groupby(group_by, sort=True, dropna=False):
        sparsities, seeds, worst, clean = _matrices(group)
        base = dict(zip(group_by, keys if isinstance(keys, tuple) else (keys,)))
        if len(sparsities) < 2 or sparsities[0] != 0.0:
            continue  # nothing to compare against the dense policy
        status = "tested" if len(seeds) >= rule.min_seeds else f"untestable: {len(seeds)} < {rule.min_seeds} seeds"
        rng = np.random.default_rng(group_seed(keys))
        result = paired_test(worst, clean, rng, rule) if status == "tested" else None
        repro = reproducibility(worst, clean, rng, rule) if status == "tested" else None
        for j, sparsity in enumerate(sparsities[1:]):
            row = {**base, SPARSITY_COLUMN: float(sparsity), "seeds": len(seeds), "status": status}
            if result is not None:
                row.update({name: (bool(v[j]) if v.dtype == bool else float(v[j])) for name, v in result.items()})
                row["reproducibility"] = float(repro[j])
            else:
                row.update({"worst_diff": float(worst[j + 1].mean() - worst[0].mean()), "sweet_spot": False,
                            "clean_diff": float(clean[j + 1].mean() - clean[0].mean())})
            rows.append(row)
    return pd.DataFrame(rows)


def paper_criterion(agents: pd.DataFrame, group_by: list[str]) -> pd.DataFrame:
    """Per group: the sparsity maximizing the seed mean of (clean_score + worst_score)/2, and the dense value.

    `agents` needs clean_score and worst_score (see `agents_with_scores`). Ties go to the lowest sparsity.
    """
    table = agents[agents.eps > 0].assign(balanced_score=lambda t: (t.clean_score + t.worst_score) / 2)
    means = table.groupby(group_by + [SPARSITY_COLUMN], sort=True, dropna=False).balanced_score.mean().reset_index()
    rows = []
    for keys, group in means.groupby(group_by, sort=True, dropna=False):
        group = group.sort_values(SPARSITY_COLUMN, kind="mergesort")
        best = group.iloc[int(np.nanargmax(group.balanced_score.to_numpy()))] if group.balanced_score.notna().any() else None
        dense = group[group[SPARSITY_COLUMN] == 0.0].balanced_score
        rows.append({**dict(zip(group_by, keys if isinstance(keys, tuple) else (keys,))),
                     "best_sparsity": float(best[SPARSITY_COLUMN]) if best is not None else np.nan,
                     "best_balanced_score": float(best.balanced_score) if best is not None else np.nan,
                     "dense_balanced_score": float(dense.iloc[0]) if len(dense) else np.nan})
    return pd.DataFrame(rows)
