"""ℓ∞ and ℓ2 balls in normalized observation space: projection, sampling and the membership check."""

from __future__ import annotations

import jax
import jax.numpy as jnp

BALL_TOLERANCE = 1e-5  # a perturbation may exceed ε by at most this much, for float rounding


def ball_norm(delta: jax.Array, norm: str) -> jax.Array:
    """Norm of each perturbation over the last axis: shape [...]."""
    if norm == "linf":
        return jnp.max(jnp.abs(delta), axis=-1)
    return jnp.sqrt(jnp.sum(delta**2, axis=-1))


def project(delta: jax.Array, eps: jax.Array, norm: str) -> jax.Array:
    """Project perturbations [..., obs] onto the ball of radius ε (a scalar)."""
    if norm == "linf":
        return jnp.clip(delta, -eps, eps)
    length = jnp.sqrt(jnp.sum(delta**2, axis=-1, keepdims=True))
    return delta * jnp.minimum(1.0, eps / jnp.maximum(length, 1e-12))


def sample_ball(key: jax.Array, shape: tuple, eps: jax.Array, norm: str, dtype=None) -> jax.Array:
    """Sample uniformly from the ball of radius ε. `shape` is [..., obs]."""
    dtype = dtype or jnp.zeros(()).dtype
    if norm == "linf":
        return jax.random.uniform(key, shape, dtype, minval=-1.0, maxval=1.0) * eps
    dir_key, radius_key = jax.random.split(key)
    direction = jax.random.normal(dir_key, shape, dtype)
    direction /= jnp.maximum(jnp.sqrt(jnp.sum(direction**2, axis=-1, keepdims=True)), 1e-12)
    radius = jax.random.uniform(radius_key, shape[:-1] + (1,), dtype) ** (1.0 / shape[-1])
    return direction * radius * eps


def ball_violation(clean: jax.Array, perturbed: jax.Array, eps: jax.Array, norm: str) -> jax.Array:
    """Largest amount by which any perturbation leaves the ball (≤ 0 when all are inside)."""
    return jnp.max(ball_norm(perturbed - clean, norm) - eps)
