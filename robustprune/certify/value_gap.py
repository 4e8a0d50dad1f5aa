"""Bounds on the return lost to an observation adversary, from a bound on the per-step TV.

These bound the loss of the stochastic policy, so compare them with returns of the stochastic policy, not
with a deterministic (mean-action) evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def value_gap_factor(gamma: jax.Array) -> jax.Array:
    """Return 2[1 + γ/(1 − γ)²], the factor of max|r|·TV in `value_gap_bound` (about 19,800 at γ = 0.99)."""
    return 2.0 * (1.0 + gamma / jnp.square(1.0 - gamma))


def value_gap_bound(tv_max: jax.Array, gamma: jax.Array, reward_bound: jax.Array) -> jax.Array:
    """Bound V^π(s) − V^{π∘ν}(s) for every state s: 2[1 + γ/(1 − γ)²]·max|r|·max_s TV_max(s).

    Source: Zhang et al., 2020, "Robust Deep Reinforcement Learning against Adversarial Perturbations on
    State Observations" (SA-MDP), the theorem that bounds the value gap by TV. `tv_max` bounds the TV between π(·|s) and π(·|ν(s)) over all
    states, `gamma` is in [0, 1), and `reward_bound` is max|r| over all transitions.
    """
    return value_gap_factor(gamma) * reward_bound * tv_max


def finite_horizon_gap_bound(tv_max: jax.Array, horizon: jax.Array, reward_bound: jax.Array) -> jax.Array:
    """Bound the undiscounted H-step return gap: Σ_{t=1}^{H} 2·max|r|·min(1, t·δ), with δ = `tv_max`.

    Couple the clean and attacked trajectories step by step. If every step's action distributions differ
    by at most δ in TV, the trajectories have split by step t with probability at most min(1, t·δ), and a
    split step costs at most 2·max|r|. The sum is evaluated in closed form: with m = min(H, ⌊1/δ⌋),
    Σ_t min(1, tδ) = δ·m(m + 1)/2 + (H − m). The result is at most 2H·max|r|.
    """
    tv_max = jnp.asarray(tv_max)
    horizon = jnp.asarray(horizon, dtype=jnp.result_type(tv_max, float))
    reaches_one = tv_max * horizon > 1.0
    safe_tv = jnp.where(reaches_one, tv_max, 1.0)
    linear_steps = jnp.where(reaches_one, jnp.minimum(horizon, jnp.floor(1.0 / safe_tv)), horizon)
    step_sum = tv_max * linear_steps * (linear_steps + 1.0) / 2.0 + (horizon - linear_steps)
    return 2.0 * reward_bound * step_sum
