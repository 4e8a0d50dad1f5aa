"""Observation attacks inside an ε-ball in normalized observation space, and the ball utilities."""

from robustprune.attacks.ball import BALL_TOLERANCE, ball_norm, ball_violation, project, sample_ball
from robustprune.attacks.pgd import pgd_maximize
from robustprune.attacks.suite import ATTACKS, AttackSettings
from robustprune.attacks.victim import Victim

__all__ = [
    "ATTACKS",
    "BALL_TOLERANCE",
    "AttackSettings",
    "Victim",
    "ball_norm",
    "ball_violation",
    "pgd_maximize",
    "project",
    "sample_ball",
]
