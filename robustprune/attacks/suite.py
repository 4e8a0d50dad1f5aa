"""The attacks: each maps (victim, clean normalized observations [n, obs], key, ε, settings) to perturbed ones.

Every attack returns observations inside the ball of radius ε around the clean ones, in the given norm and
with the victim's per-dimension `ball_scale`. Learned attacks (Robust Sarsa, SA-RL, PA-AD) read their
trained parameters from `victim.adversary`; transfer attacks craft on `victim.surrogate`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from robustprune.attacks.adversary import paad_attack, sarl_attack
from robustprune.attacks.ball import project, sample_ball
from robustprune.attacks.pgd import pgd_maximize
from robustprune.attacks.sarsa import rs_attack, rs_mad_attack
from robustprune.attacks.settings import AttackSettings
from robustprune.attacks.victim import Victim


def no_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    del victim, key, eps, settings
    return obs


def random_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """Uniform noise in the ball."""
    return obs + sample_ball(key, obs.shape, eps, settings.norm, obs.dtype, victim.ball_scale)


def _pgd(victim: Victim, objective, obs, key, eps, settings: AttackSettings, langevin_beta: float = 0.0):
    return pgd_maximize(
        objective,
        obs,
        key,
        eps,
        norm=settings.norm,
        steps=settings.pgd_steps,
        step_size=settings.pgd_step_frac * eps,
        scale=victim.ball_scale,
        restarts=settings.restarts,
        langevin_beta=langevin_beta,
    )


def mad_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """MAD (maximal action difference): PGD on KL(π(·|s) ‖ π(·|ŝ)) (Zhang et al., 2020).

    With settings.langevin_beta > 0, Gaussian noise that shrinks to zero over the steps is added to the
    gradient, as in SA_PPO's MAD.
    """
    clean = jax.lax.stop_gradient(victim.dist_params(obs))
    return _pgd(victim, lambda x: victim.kl_to(clean, x), obs, key, eps, settings, settings.langevin_beta)


def critic_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """Critic attack: PGD that minimizes the victim's own value estimate V(ŝ)."""
    return _pgd(victim, lambda x: -victim.value(x), obs, key, eps, settings)


def transfer(attack: Callable) -> Callable:
    """Craft `attack` on victim.surrogate (the dense policy of the same seed) and apply it to the victim.

    Observations map between the two cells' normalized units through raw space (obs·std + mean), so the
    surrogate attacks the same raw state. The victim's ball becomes a per-dimension ball in the surrogate's
    units, and the crafted raw perturbation comes back inside the victim's ball (then projected, for rounding).
    """

    def transfer_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
        src = victim.surrogate
        std_t, std_s = victim.normalizer.std, src.normalizer.std
        scale_t = jnp.ones_like(std_t) if victim.ball_scale is None else victim.ball_scale
        src_obs = (obs * std_t + victim.normalizer.mean - src.normalizer.mean) / std_s
        src = src.replace(ball_scale=scale_t * std_t / std_s, surrogate=None)
        src_delta = attack(src, src_obs, key, eps, settings) - src_obs
        delta = project(src_delta * std_s / std_t, eps, settings.norm, victim.ball_scale)
        return obs + delta

    transfer_attack.__doc__ = f"Transfer attack: {attack.__name__} crafted on the dense surrogate."
    return transfer_attack


AttackFn = Callable[[Victim, jax.Array, jax.Array, jax.Array, AttackSettings], jax.Array]

ATTACKS: dict[str, AttackFn] = {
    "none": no_attack,
    "random": random_attack,
    "critic": critic_attack,
    "mad": mad_attack,
    "robust_sarsa": rs_attack,
    "rs_mad": rs_mad_attack,
    "sa_rl": sarl_attack,
    "pa_ad": paad_attack,
    "transfer_mad": transfer(mad_attack),
    "transfer_critic": transfer(critic_attack),
}

# Attacks that need trained parameters in victim.adversary, and the kind of adversary each trains.
LEARNED_ATTACKS: dict[str, str] = {"robust_sarsa": "sarsa", "rs_mad": "sarsa", "sa_rl": "sa_rl", "pa_ad": "pa_ad"}
# Attacks that craft on victim.surrogate, the dense cell of the same seed.
TRANSFER_ATTACKS = ("transfer_mad", "transfer_critic")
# Attacks whose minimum makes the reported worst case (the published suite). Transfer attacks are extra.
SUITE = ("random", "critic", "mad", "robust_sarsa", "rs_mad", "sa_rl", "pa_ad")
