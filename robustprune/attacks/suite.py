"""The attacks: each maps (victim, clean normalized observations [n, obs], key, ε) to perturbed ones.

Every attack returns observations inside the ball of radius ε around the clean ones, in the given norm.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from robustprune.attacks.ball import sample_ball
from robustprune.attacks.pgd import pgd_maximize
from robustprune.attacks.victim import Victim


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """Static attack settings: the norm, PGD iterations and the PGD step as a fraction of ε."""

    norm: str = "linf"
    pgd_steps: int = 10
    pgd_step_frac: float = 0.1


def no_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    del victim, key, eps, settings
    return obs


def random_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """Uniform noise in the ball."""
    del victim
    return obs + sample_ball(key, obs.shape, eps, settings.norm, obs.dtype)


def mad_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """MAD (maximal action difference): PGD on KL(π(·|s) ‖ π(·|ŝ)) (Zhang et al., 2020)."""
    clean_mean = jax.lax.stop_gradient(victim.mean(obs))
    return pgd_maximize(
        lambda x: victim.kl_to(clean_mean, x),
        obs,
        key,
        eps,
        norm=settings.norm,
        steps=settings.pgd_steps,
        step_size=settings.pgd_step_frac * eps,
    )


def critic_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """Critic attack: PGD that minimizes the victim's own value estimate V(ŝ)."""
    return pgd_maximize(
        lambda x: -victim.value(x),
        obs,
        key,
        eps,
        norm=settings.norm,
        steps=settings.pgd_steps,
        step_size=settings.pgd_step_frac * eps,
    )


AttackFn = Callable[[Victim, jax.Array, jax.Array, jax.Array, AttackSettings], jax.Array]

ATTACKS: dict[str, AttackFn] = {
    "none": no_attack,
    "random": random_attack,
    "critic": critic_attack,
    "mad": mad_attack,
}
