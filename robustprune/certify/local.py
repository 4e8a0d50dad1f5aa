"""Local certificates at one state: interval bound propagation (IBP) over the ε-ball around x.

Source: Gowal et al., 2018, "On the Effectiveness of Interval Bound Propagation for Training Verifiably
Robust Models". An affine layer maps the box with center c and radius r to the box with center c @ W + b and
radius r @ |W|. An activation maps each interval to its exact image (`interval_activation`).

The first affine layer maps the ball exactly: over ‖Δ‖_p ≤ ε, (Δ @ W)_j ranges over ±ε‖W_{:,j}‖_{p*} with
p* the dual norm. For the ℓ∞ ball this is the usual box propagation, and for ℓ2 and ℓ1 balls it is tighter
than propagating the enclosing box. IBP bounds are usually tighter than global Lipschitz bounds, but they are
not monotone under masking. They hold up to floating-point rounding, which is not directed here.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from robustprune.certify.activations import check_activation, interval_activation
from robustprune.certify.distributions import gaussian_tv, logit_change_tv_bound
from robustprune.certify.mlp import check_kernels, check_norm, mlp_apply


def interval_affine(
    lower: jax.Array, upper: jax.Array, kernel: jax.Array, bias: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Map the box [lower, upper] ([..., in]) through x ↦ x @ kernel + bias, giving two [..., out] arrays."""
    center = 0.5 * (upper + lower) @ kernel + bias
    radius = 0.5 * (upper - lower) @ jnp.abs(kernel)
    return center - radius, center + radius


def ball_affine_image(
    x: jax.Array,
    eps: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    *,
    norm: str,
    in_scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Return the exact box image of {x + in_scale ⊙ Δ : ‖Δ‖_norm ≤ ε} under x ↦ x @ kernel + bias.

    Shapes: x [in], eps scalar, kernel [in, out], bias [out]. Returns (lower, upper), each [out].
    """
    check_norm(norm)
    scaled = kernel if in_scale is None else in_scale[:, None] * kernel
    if norm == "linf":
        dual_norms = jnp.sum(jnp.abs(scaled), axis=0)
    elif norm == "l2":
        dual_norms = jnp.sqrt(jnp.sum(jnp.square(scaled), axis=0))
    else:
        dual_norms = jnp.max(jnp.abs(scaled), axis=0)
    center = x @ kernel + bias
    radius = eps * dual_norms
    return center - radius, center + radius


def ibp_bounds(
    kernels: Sequence[jax.Array],
    biases: Sequence[jax.Array],
    x: jax.Array,
    eps: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Bound the network output over the ε-ball around x from below and above.

    Args:
      kernels, biases: the masked network (see `mlp.py`).
      x: [obs_dim] normalized observation.
      eps: scalar radius, in normalized units, or in raw units when `in_scale` (1/std of the observation
        normalizer, [obs_dim]) is given.
      activation: 'tanh', 'relu', 'elu' or 'silu'.
      norm: the ball, 'linf', 'l2' or 'l1'.

    Returns:
      (lower, upper), each [out], with lower ≤ f(x̂) ≤ upper for every x̂ in the ball.
    """
    check_activation(activation)
    check_kernels(kernels, biases)
    lower, upper = ball_affine_image(x, eps, kernels[0], biases[0], norm=norm, in_scale=in_scale)
    for kernel, bias in zip(kernels[1:], biases[1:]):
        lower, upper = interval_activation(lower, upper, activation)
        lower, upper = interval_affine(lower, upper, kernel, bias)
    return lower, upper


def _output_change_bounds(kernels, biases, x, eps, activation, norm, in_scale):
    """Return bounds (low, high) on f(x̂) − f(x) over the ball, each [out]."""
    lower, upper = ibp_bounds(kernels, biases, x, eps, activation=activation, norm=norm, in_scale=in_scale)
    center = mlp_apply(kernels, biases, x, activation=activation)
    return lower - center, upper - center


def local_gaussian_delta_bound(
    kernels: Sequence[jax.Array],
    biases: Sequence[jax.Array],
    log_std: jax.Array,
    x: jax.Array,
    eps: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
) -> jax.Array:
    """Bound the Mahalanobis distance δ = ‖Σ^{-1/2}(μ(x̂) − μ(x))‖₂ over the ball by a scalar.

    δ ≤ ‖Σ^{-1/2} max(|u − μ(x)|, |l − μ(x)|)‖₂ with (l, u) from `ibp_bounds`. Arguments as there, and
    `log_std` [action_dim].
    """
    low, high = _output_change_bounds(kernels, biases, x, eps, activation, norm, in_scale)
    deviation = jnp.maximum(jnp.abs(low), jnp.abs(high))
    return jnp.sqrt(jnp.sum(jnp.square(deviation * jnp.exp(-log_std))))


def local_gaussian_tv_bound(
    kernels: Sequence[jax.Array],
    biases: Sequence[jax.Array],
    log_std: jax.Array,
    x: jax.Array,
    eps: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
) -> jax.Array:
    """Bound TV(π(·|x), π(·|x̂)) over every x̂ in the ball by gaussian_tv(δ), δ from `local_gaussian_delta_bound`."""
    delta = local_gaussian_delta_bound(
        kernels, biases, log_std, x, eps, activation=activation, norm=norm, in_scale=in_scale
    )
    return gaussian_tv(delta)


def local_categorical_tv_per_dim(
    kernels: Sequence[jax.Array],
    biases: Sequence[jax.Array],
    x: jax.Array,
    eps: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
    n_bins: int | None = None,
) -> jax.Array:
    """Bound each factor's TV over the ball by (max Δz − min Δz)/4 from IBP, as an [action_dim] array.

    The logits' last axis is read as [action_dim, n_bins], and `n_bins=None` means one categorical.
    """
    low, high = _output_change_bounds(kernels, biases, x, eps, activation, norm, in_scale)
    bins = low.shape[-1] if n_bins is None else n_bins
    if low.shape[-1] % bins != 0:
        raise ValueError(f"n_bins={n_bins} must divide the number of logits, {low.shape[-1]}.")
    return logit_change_tv_bound(low.reshape(-1, bins), high.reshape(-1, bins))


def local_categorical_tv_bound(
    kernels: Sequence[jax.Array],
    biases: Sequence[jax.Array],
    x: jax.Array,
    eps: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
    n_bins: int | None = None,
) -> jax.Array:
    """Bound the joint TV over the ball by the scalar min(1, Σ_d of `local_categorical_tv_per_dim`)."""
    per_dimension = local_categorical_tv_per_dim(
        kernels, biases, x, eps, activation=activation, norm=norm, in_scale=in_scale, n_bins=n_bins
    )
    return jnp.minimum(1.0, jnp.sum(per_dimension))
