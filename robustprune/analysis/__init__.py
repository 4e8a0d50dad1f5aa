"""Analysis of saved run folders: statistics across seeds, worst cases, regret, sweet spots and frontier.

Everything here reads the CSV tables and run.json of run folders (`load_runs`) and needs no training, no
checkpoints and no accelerator. Every table is deterministic: bootstrap draws are seeded per group.
"""

from robustprune.analysis.frontier import frontier_table, pareto_mask
from robustprune.analysis.regret import TERMS, certified_gap, reference_returns, regret_summary, regret_table
from robustprune.analysis.stats import bootstrap_ci, bootstrap_indices, iqm, median_agent_position
from robustprune.analysis.summary import agents_with_scores, dense_reference, long_returns, summarize_run
from robustprune.analysis.sweetspot import SweetSpotRule, holm, paired_test, paper_criterion, sweet_spots
from robustprune.analysis.tables import (
    RunTables,
    agent_table,
    clean_returns,
    load_runs,
    setting_columns,
    tightest_tv_bound,
    worst_case,
)

__all__ = [
    "TERMS",
    "RunTables",
    "SweetSpotRule",
    "agent_table",
    "agents_with_scores",
    "bootstrap_ci",
    "bootstrap_indices",
    "certified_gap",
    "clean_returns",
    "dense_reference",
    "frontier_table",
    "holm",
    "iqm",
    "load_runs",
    "long_returns",
    "median_agent_position",
    "paired_test",
    "paper_criterion",
    "pareto_mask",
    "reference_returns",
    "regret_summary",
    "regret_table",
    "setting_columns",
    "summarize_run",
    "sweet_spots",
    "tightest_tv_bound",
    "worst_case",
]
