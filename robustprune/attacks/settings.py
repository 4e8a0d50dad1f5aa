"""Static attack settings, shared by every attack function (shapes and counts, never traced)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """Static settings of an attack call.

    norm: "linf" or "l2". pgd_steps, pgd_step_frac: PGD iterations and step as a fraction of ε.
    restarts: PGD random starts. langevin_beta: MAD gradient-noise scale (0: plain MAD).
    rs_mad_ratio: weight of the KL term in RS+MAD. hidden_sizes, activation: shapes of the learned attacks'
    networks (Q-function, SA-RL adversary, PA-AD director). paad_actor_steps: PGD steps of PA-AD's actor
    (1 with a step of ε is FGSM).
    """

    norm: str = "linf"
    pgd_steps: int = 10
    pgd_step_frac: float = 0.1
    restarts: int = 1
    langevin_beta: float = 0.0
    rs_mad_ratio: float = 0.5
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    paad_actor_steps: int = 2


def settings_from_config(cfg) -> AttackSettings:
    """AttackSettings of a StudyConfig: PGD basics from cfg.eval, the rest from cfg.attack and cfg.network."""
    return AttackSettings(
        norm=cfg.eval.norm,
        pgd_steps=cfg.eval.pgd_steps,
        pgd_step_frac=cfg.eval.pgd_step_frac,
        restarts=cfg.attack.pgd_restarts,
        langevin_beta=cfg.attack.mad_langevin_beta,
        rs_mad_ratio=cfg.attack.rs_mad_ratio,
        hidden_sizes=tuple(cfg.network.hidden_sizes),
        activation=cfg.network.activation,
        paad_actor_steps=cfg.attack.paad_actor_steps,
    )
