"""Observation attacks inside an ε-ball in normalized observation space, and the ball utilities."""

from robustprune.attacks.ball import (
    BALL_TOLERANCE,
    ball_norm,
    ball_violation,
    project,
    sample_ball,
    shared_raw_scale,
)
from robustprune.attacks.pgd import pgd_maximize
from robustprune.attacks.settings import AttackSettings, settings_from_config
from robustprune.attacks.suite import ATTACKS, LEARNED_ATTACKS, SUITE, TRANSFER_ATTACKS
from robustprune.attacks.victim import Victim

__all__ = [
    "ATTACKS",
    "BALL_TOLERANCE",
    "LEARNED_ATTACKS",
    "SUITE",
    "TRANSFER_ATTACKS",
    "AttackSettings",
    "Victim",
    "ball_norm",
    "ball_violation",
    "pgd_maximize",
    "project",
    "sample_ball",
    "settings_from_config",
    "shared_raw_scale",
]
