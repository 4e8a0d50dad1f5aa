"""ℓ∞ and ℓ2 balls in normalized observation space: projection, sampling and the membership check.

Every function takes the radius ε (a scalar) and an optional per-dimension `scale` [obs] (positive). The
ball is {δ : ‖δ ⊘ scale‖ ≤ ε}, so dimension i has radius ε·scale_i. `scale=None` means all ones: the
protocol's ball in each cell's own normalized units. A per-dimension scale expresses a threat shared by
cells with different normalizers (see `shared_raw_scale`): an ℓ∞ box with per-dimension radii, or an ℓ2
ellipsoid in normalized units.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BALL_TOLERANCE = 1e-5  # a perturbation may exceed ε by at most this much, for float rounding


def _unscale(delta: jax.Array, scale) -> jax.Array:
    return delta if scale is None else delta / scale


def _rescale(u: jax.Array, scale) -> jax.Array:
    return u if scale is None else u * scale


def ball_norm(delta: jax.Array, norm: str, scale=None) -> jax.Array:
    """Norm of each perturbation over the last axis, in ε units (‖δ ⊘ scale‖): shape [...]."""
    u = _unscale(delta, scale)
    if norm == "linf":
        return jnp.max(jnp.abs(u), axis=-1)
    return jnp.sqrt(jnp.sum(u**2, axis=-1))


def project(delta: jax.Array, eps: jax.Array, norm: str, scale=None) -> jax.Array:
    """Map perturbations [..., obs] into the ball of radius ε (a scalar).

    ℓ∞: the exact Euclidean projection (a per-dimension clip at ±ε·scale_i). ℓ2: radial shrinking in the
    scaled coordinates δ ⊘ scale, which is the exact projection when scale is uniform.
    """
    u = _unscale(delta, scale)
    if norm == "linf":
        u = jnp.clip(u, -eps, eps)
    else:
        length = jnp.sqrt(jnp.sum(u**2, axis=-1, keepdims=True))
        u = u * jnp.minimum(1.0, eps / jnp.maximum(length, 1e-12))
    return _rescale(u, scale)


def sample_ball(key: jax.Array, shape: tuple, eps: jax.Array, norm: str, dtype=None, scale=None) -> jax.Array:
    """Sample uniformly from the ball of radius ε (uniform in the scaled coordinates). `shape` is [..., obs]."""
    dtype = dtype or jnp.zeros(()).dtype
    if norm == "linf":
        u = jax.random.uniform(key, shape, dtype, minval=-1.0, maxval=1.0) * eps
        return _rescale(u, scale)
    dir_key, radius_key = jax.random.split(key)
    direction = jax.random.normal(dir_key, shape, dtype)
    direction /= jnp.maximum(jnp.sqrt(jnp.sum(direction**2, axis=-1, keepdims=True)), 1e-12)
    radius = jax.random.uniform(radius_key, shape[:-1] + (1,), dtype) ** (1.0 / shape[-1])
    return _rescale(direction * radius * eps, scale)


def ball_violation(clean: jax.Array, perturbed: jax.Array, eps: jax.Array, norm: str, scale=None) -> jax.Array:
    """Largest amount, in ε units, by which any perturbation leaves the ball (≤ 0 when all are inside)."""
    return jnp.max(ball_norm(perturbed - clean, norm, scale) - eps)


def shared_raw_scale(std_reference: jax.Array, std_cell: jax.Array) -> jax.Array:
    """Per-dimension scale that turns a raw-space box of ε·std_reference into a cell's normalized units.

    A raw perturbation of ε·std_ref_i moves the cell's normalized observation by ε·std_ref_i / std_cell_i, so
    every cell faces the same physical threat. Shapes: [..., obs] → [..., obs].
    """
    return std_reference / std_cell
