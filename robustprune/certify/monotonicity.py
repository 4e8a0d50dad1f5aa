"""Measure how often a bound rises along a sequence of masks that only shrink.

The monotonicity claim is about masking fixed weights: take one trained dense policy, prune copies of it at
increasing sparsity (nested masks), and evaluate each bound on every copy. A monotone bound never rises along
such a sequence. The spectral product can.

Masks are a list with one array per layer, each [steps, in, out]. Step s contains the mask of every layer at
the s-th sparsity, and steps are ordered from dense to sparse.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from robustprune.certify.lipschitz import gaussian_lipschitz_bounds
from robustprune.certify.norms import spectral_norm


def masks_are_nested(masks: Sequence[jax.Array]) -> jax.Array:
    """Return True when every step's mask is contained in the previous step's mask, for every layer."""
    nested = [jnp.all((mask[1:] != 0) <= (mask[:-1] != 0)) for mask in masks]
    return jnp.all(jnp.stack(nested))


def increase_fraction(values: jax.Array, rtol: float = 1e-6) -> jax.Array:
    """Return the fraction of consecutive steps where values[s + 1] > values[s]·(1 + rtol), for [steps] values.

    `rtol` keeps rounding noise from counting as a rise.
    """
    rises = values[1:] > values[:-1] * (1.0 + rtol)
    return jnp.mean(rises.astype(values.dtype))


def spectral_increase_fraction(
    kernels: Sequence[jax.Array], masks: Sequence[jax.Array], log_std: jax.Array | None = None, *, rtol: float = 1e-6
) -> jax.Array:
    """Return the fraction of pruning steps where Π_l ‖M_l ⊙ W_l‖₂ rose, with Σ^{-1/2} folded in when given.

    The slope factor ρ^{L−1} and the √n of the ℓ∞ conversion are constant along the sequence, so they do
    not change which steps rise.
    """

    def product_at(step_masks: Sequence[jax.Array]) -> jax.Array:
        masked = [mask * kernel for mask, kernel in zip(step_masks, kernels)]
        if log_std is not None:
            masked[-1] = masked[-1] * jnp.exp(-log_std)[None, :]
        value = jnp.ones((), masked[0].dtype)
        for kernel in masked:
            value = value * spectral_norm(kernel)
        return value

    return increase_fraction(jax.vmap(product_at)(list(masks)), rtol)


def gaussian_bound_increase_fractions(
    kernels: Sequence[jax.Array],
    masks: Sequence[jax.Array],
    log_std: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    rtol: float = 1e-6,
) -> dict[str, jax.Array]:
    """Return, per bound of `gaussian_lipschitz_bounds`, the fraction of pruning steps where it rose.

    Monotone bounds give 0 on nested masks. The value for a non-monotone bound is what to report.
    """

    def bounds_at(step_masks: Sequence[jax.Array]) -> dict[str, jax.Array]:
        masked = [mask * kernel for mask, kernel in zip(step_masks, kernels)]
        return gaussian_lipschitz_bounds(masked, log_std, activation=activation, norm=norm)

    values = jax.vmap(bounds_at)(list(masks))
    return {name: increase_fraction(series, rtol) for name, series in values.items()}
