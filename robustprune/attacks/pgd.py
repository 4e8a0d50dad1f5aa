"""Projected gradient ascent inside an ℓ∞ or ℓ2 ball, shared by the gradient-based attacks."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from robustprune.attacks.ball import project, sample_ball


def pgd_maximize(
    objective: Callable[[jax.Array], jax.Array],
    obs: jax.Array,
    key: jax.Array,
    eps: jax.Array,
    *,
    norm: str,
    steps: int,
    step_size: jax.Array,
) -> jax.Array:
    """Maximize a per-row objective over ŝ = obs + δ with ‖δ‖ ≤ ε, from a uniform random start.

    Args:
      objective: maps observations [n, obs] to values [n]; rows are independent.
      obs: clean normalized observations [n, obs].
      steps, step_size: PGD iterations and the step length (ℓ∞: signed gradient; ℓ2: unit gradient).

    Returns:
      The best ŝ found per row over all iterates, [n, obs], always inside the ball.
    """
    delta = sample_ball(key, obs.shape, eps, norm, obs.dtype)
    grad_fn = jax.grad(lambda d: jnp.sum(objective(obs + d)))

    def step(carry, _):
        delta, best_delta, best_value = carry
        g = grad_fn(delta)
        if norm == "linf":
            direction = jnp.sign(g)
        else:
            direction = g / jnp.maximum(jnp.sqrt(jnp.sum(g**2, axis=-1, keepdims=True)), 1e-12)
        delta = project(delta + step_size * direction, eps, norm)

        value = objective(obs + delta)
        better = value > best_value
        best_delta = jnp.where(better[:, None], delta, best_delta)
        return (delta, best_delta, jnp.maximum(value, best_value)), None

    init = (delta, delta, objective(obs + delta))
    (_, best_delta, _), _ = jax.lax.scan(step, init, None, steps)
    return obs + best_delta
