"""Projected gradient ascent inside an ℓ∞ or ℓ2 ball, shared by the gradient-based attacks."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from robustprune.attacks.ball import project, sample_ball


def ascent_direction(g: jax.Array, norm: str, scale=None) -> jax.Array:
    """Steepest-ascent step of unit length in the ball's geometry: sign(g) for ℓ∞, g/‖g‖ for ℓ2.

    With a per-dimension scale the step is taken in the scaled coordinates and mapped back, so a step of
    length η moves dimension i by at most η·scale_i.
    """
    if scale is not None:
        g = g * scale  # gradient with respect to the scaled coordinates u = δ ⊘ scale
    if norm == "linf":
        direction = jnp.sign(g)
    else:
        direction = g / jnp.maximum(jnp.sqrt(jnp.sum(g**2, axis=-1, keepdims=True)), 1e-12)
    return direction if scale is None else direction * scale


def _pgd_once(objective, obs, key, eps, norm, steps, step_size, scale, langevin_beta, random_start):
    init_key, noise_key = jax.random.split(key)
    delta = sample_ball(init_key, obs.shape, eps, norm, obs.dtype, scale) if random_start else jnp.zeros_like(obs)
    grad_fn = jax.grad(lambda d: jnp.sum(objective(obs + d)))

    def step(carry, xs):
        delta, best_delta, best_value = carry
        t, step_key = xs
        direction = grad_fn(delta)
        if langevin_beta:
            # Langevin-style noise on the gradient, shrinking linearly to zero over the steps (SA_PPO's MAD).
            scale_t = langevin_beta * (1.0 - t / steps) * jnp.sqrt(jnp.mean(direction**2, axis=-1, keepdims=True))
            direction = direction + scale_t * jax.random.normal(step_key, direction.shape, direction.dtype)
        delta = project(delta + step_size * ascent_direction(direction, norm, scale), eps, norm, scale)

        value = objective(obs + delta)
        better = value > best_value
        best_delta = jnp.where(better[:, None], delta, best_delta)
        return (delta, best_delta, jnp.maximum(value, best_value)), None

    init = (delta, delta, objective(obs + delta))
    xs = (jnp.arange(steps, dtype=obs.dtype), jax.random.split(noise_key, steps))
    (_, best_delta, best_value), _ = jax.lax.scan(step, init, xs)
    return best_delta, best_value


def pgd_maximize(
    objective: Callable[[jax.Array], jax.Array],
    obs: jax.Array,
    key: jax.Array,
    eps: jax.Array,
    *,
    norm: str,
    steps: int,
    step_size: jax.Array,
    scale=None,
    restarts: int = 1,
    langevin_beta: float = 0.0,
    random_start: bool = True,
) -> jax.Array:
    """Maximize a per-row objective over ŝ = obs + δ with ‖δ ⊘ scale‖ ≤ ε, from uniform random starts.

    Args:
      objective: maps observations [n, obs] to values [n]; rows are independent.
      obs: clean normalized observations [n, obs].
      steps, step_size: PGD iterations and the step length (ℓ∞: signed gradient; ℓ2: unit gradient).
      scale: optional per-dimension ball scale [obs] (see `robustprune.attacks.ball`).
      restarts: independent random starts; the best iterate over all of them is kept (static).
      langevin_beta: relative std of Gaussian noise added to the gradient, decaying linearly to 0 (static).
      random_start: start from a uniform sample of the ball (True) or from δ = 0 (False, as FGSM does).

    Returns:
      The best ŝ found per row over all iterates and restarts, [n, obs], always inside the ball.
    """
    best_delta, best_value = None, None
    for key_r in jax.random.split(key, restarts):
        delta, value = _pgd_once(objective, obs, key_r, eps, norm, steps, step_size, scale, langevin_beta,
                                 random_start)
        if best_delta is None:
            best_delta, best_value = delta, value
        else:
            better = value > best_value
            best_delta = jnp.where(better[:, None], delta, best_delta)
            best_value = jnp.maximum(value, best_value)
    return obs + best_delta
