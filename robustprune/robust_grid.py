"""The robust-training axis of a grid: methods × κ × training ε, crossed with every pruning cell.

A method is static, so each one trains as its own program (`program_config`); κ and ε are traced per cell
(`robustprune.train.robust.RobustParams`). Vanilla cells carry κ = ε = 0. κ is crossed only for the methods
that use it (SA-PPO and Lipschitz); adversarial rollouts only use ε.
"""

from __future__ import annotations

import dataclasses
import itertools

from robustprune.config import ConfigError, StudyConfig

USES_KAPPA = ("sa_ppo", "lipschitz")


def method_settings(cfg: StudyConfig, method: str) -> list[tuple[float, float]]:
    """List the (κ, ε) pairs a method's cells take: [(0, 0)] for vanilla, ε only for adversarial."""
    r = cfg.robust
    if method == "vanilla":
        return [(0.0, 0.0)]
    if method in USES_KAPPA:
        return list(itertools.product(r.kappas, r.train_eps))
    return [(0.0, eps) for eps in r.train_eps]


def cross_robust_methods(cfg: StudyConfig, specs: list[dict]) -> list[dict]:
    """Cross the pruning grid's cell specs with the robust methods, method-major, then κ, then ε.

    With robust.methods == ("vanilla",) the specs come back unchanged (κ = ε = 0 by the Cell defaults).
    """
    if tuple(cfg.robust.methods) == ("vanilla",):
        return specs
    out = []
    for method in cfg.robust.methods:
        for kappa, eps in method_settings(cfg, method):
            out += [dict(spec, robust_method=method, kappa=kappa, train_eps=eps) for spec in specs]
    return out


def program_config(cfg: StudyConfig, method: str) -> StudyConfig:
    """Return the config of one method's program: robust.methods = (method,)."""
    return dataclasses.replace(cfg, robust=dataclasses.replace(cfg.robust, methods=(method,)))


def check_program_method(cfg: StudyConfig, cells: list) -> None:
    """Raise ConfigError when a cell's robust method is not its program's (the config's single method)."""
    methods = tuple(cfg.robust.methods)
    wrong = [c for c in cells if len(methods) != 1 or c.robust_method != methods[0]]
    if wrong:
        raise ConfigError(
            f"cell {wrong[0].cell_id} uses robust method {wrong[0].robust_method!r}, but this program's config has "
            f"robust.methods={methods!r}: the method is static, so train each method's cells with its own "
            "config (robustprune.cell_groups.network_groups splits a grid this way)."
        )


def robust_columns(cell) -> dict:
    """Return the cells.csv columns of a cell's robust-training setting."""
    return {"robust_method": cell.robust_method, "kappa": cell.kappa, "train_eps": cell.train_eps}
