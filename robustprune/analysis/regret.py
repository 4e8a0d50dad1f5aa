"""Regret decomposition of every cell at every ε.

    J(π*) − J̃(π_m) = [J(π*) − J(π)] + [J(π) − J(π_m)] + [J(π_m) − J̃(π_m)]
                    =  clean regret  +  pruning loss  +   attack gap

π_m is the cell, π the dense cell (target sparsity 0) with the same seed and the same other settings, J the
clean return, J̃ the worst-case return over the attack suite at the row's ε, and J(π*) the best dense clean
return of the same environment and preset in the study, unless a reference return is given.

Beside the measured attack gap stands a certified bound on it: the finite-horizon coupling bound
Σ_{t=1}^{H} 2·max|r|·min(1, t·δ), with δ the cell's tightest certified TV bound at that ε
(`robustprune.certify.finite_horizon_gap_bound`). That bound holds for the stochastic policy; the measured
returns come from the deterministic (mean-action) policy, so the two are not strictly comparable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustprune.analysis.summary import agents_with_scores, normalizer_columns
from robustprune.analysis.tables import SEED_COLUMN, SPARSITY_COLUMN, RunTables, expand_dense, reference_dense, setting_columns
from robustprune.config import ConfigError

TERMS = ("clean_regret", "pruning_loss", "attack_gap")


def _horizons(run: RunTables) -> pd.DataFrame:
    """Evaluation horizon H and max|r| per preset, from each source's run.json."""
    rows = {}
    for record in run.runs.values():
        config = record.get("config", {})
        horizon = record.get("evaluation_horizon", config.get("eval", {}).get("episode_length"))
        reward = config.get("env", {}).get("reward_per_step_max")
        rows.setdefault(config.get("name", "unknown"), (horizon, reward))
    return pd.DataFrame([{"preset": k, "horizon": v[0], "reward_bound": v[1]} for k, v in rows.items()])


def certified_gap(tv_bound, horizon, reward_bound) -> np.ndarray:
    """Finite-horizon bound on the stochastic policy's return gap (see module doc); NaN where inputs are NaN."""
    from robustprune.certify import finite_horizon_gap_bound

    tv = np.asarray(tv_bound, dtype=float)
    horizon = np.asarray(horizon, dtype=float)
    reward = np.asarray(reward_bound, dtype=float)
    ok = np.isfinite(tv) & np.isfinite(horizon) & np.isfinite(reward)
    value = np.asarray(finite_horizon_gap_bound(np.where(ok, tv, 0.0), np.where(ok, horizon, 1.0),
                                                np.where(ok, reward, 0.0)), dtype=float)
    return np.where(ok, value, np.nan)


def reference_returns(agents: pd.DataFrame, by: list[str], reference=None) -> pd.DataFrame:
    """J(π*) per group `by`: the best dense clean return, or the user's `reference`.

    `reference` is None, one float for every group, or a dict from environment name to a float.
    """
    dense = agents[reference_dense(agents)] if "capacity_of" in agents else agents[agents[SPARSITY_COLUMN] == 0.0]
    best = dense.groupby(by, sort=True).clean_return.max().rename("reference_return").reset_index()
    best["reference_source"] = "best dense clean return in study"
    if reference is None:
        return best
    if isinstance(reference, dict):
        missing = sorted(set(best["env"]) - set(reference))
        if missing:
            raise ConfigError(f"reference returns lack environments {missing}. Give a return for each of "
                              f"{sorted(set(best['env']))}, or a single number.")
        best["reference_return"] = best["env"].map(reference).astype(float)
    else:
        best["reference_return"] = float(reference)
    best["reference_source"] = "given"
    return best


def regret_table(run: RunTables, reference=None) -> pd.DataFrame:
    """One row per cell and ε: the three regret terms, their sum, and the certified attack-gap bound.

    Columns: settings, seed, norm, eps, reference_return, dense_clean_return, clean_return, worst_return,
    worst_attack, clean_regret, pruning_loss, attack_gap, total_regret, tv_bound, tv_bound_name,
    certified_attack_gap_stochastic. Cells without a dense partner of the same seed are dropped.
    Raises ConfigError when the study has no dense cells.
    """
    settings = setting_columns(run.cells)
    agents = expand_dense(agents_with_scores(run), settings)
    if not (agents[SPARSITY_COLUMN] == 0.0).any():
        raise ConfigError("the regret decomposition needs dense cells (sparsity 0) as the reference policy π; "
                          "add 0.0 to prune.sparsities.")
    pair = [c for c in settings if c != SPARSITY_COLUMN] + [SEED_COLUMN, "norm", "eps"]
    dense = agents[agents[SPARSITY_COLUMN] == 0.0][pair + ["clean_return"]]
    table = agents.merge(dense.rename(columns={"clean_return": "dense_clean_return"}), on=pair, how="inner")
    table = table.merge(reference_returns(agents, normalizer_columns(run.cells), reference),
                        on=normalizer_columns(run.cells), how="left")
    table["clean_regret"] = table.reference_return - table.dense_clean_return
    table["pruning_loss"] = table.dense_clean_return - table.clean_return
    table["attack_gap"] = table.clean_return - table.worst_return
    table["total_regret"] = table.reference_return - table.worst_return
    if "preset" in table:
        table = table.merge(_horizons(run), on="preset", how="left")
    else:
        table["horizon"], table["reward_bound"] = np.nan, np.nan
    table["certified_attack_gap_stochastic"] = certified_gap(table.tv_bound, table.horizon, table.reward_bound)
    columns = settings + [SEED_COLUMN, "norm", "eps", "reference_return", "reference_source", "dense_clean_return",
                          "clean_return", "worst_return", "worst_attack", *TERMS, "total_regret", "tv_bound",
                          "tv_bound_name", "horizon", "reward_bound", "certified_attack_gap_stochastic"]
    return table[columns].sort_values(settings + ["norm", "eps", SEED_COLUMN], kind="mergesort").reset_index(drop=True)


def regret_summary(regret: pd.DataFrame) -> pd.DataFrame:
    """Seed means of every term per setting, norm and ε (the terms are additive, so the means add up too)."""
    settings = [c for c in regret.columns if c not in _NON_SETTING]
    values = list(TERMS) + ["total_regret", "certified_attack_gap_stochastic"]
    grouped = regret.groupby(settings + ["norm", "eps"], sort=True, dropna=False)
    out = grouped[values].mean()
    out.insert(0, "seeds", grouped.size())
    return out.reset_index()


_NON_SETTING = {SEED_COLUMN, "norm", "eps", "reference_return", "reference_source", "dense_clean_return",
                "clean_return", "worst_return", "worst_attack", *TERMS, "total_regret", "tv_bound", "tv_bound_name",
                "horizon", "reward_bound", "certified_attack_gap_stochastic"}
