"""Binary pruning masks with a traced sparsity target.

Sparsity is the fraction of prunable weights that are exactly zero. A target s over n prunable weights
prunes exactly round(s · n) of them, so the achieved sparsity is within half a weight of the target.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def global_magnitude_masks(
    kernels: Sequence[jax.Array], old_masks: Sequence[jax.Array], sparsity: jax.Array
) -> tuple[jax.Array, ...]:
    """Prune the smallest-magnitude weights across all layers (one global threshold).

    Args:
      kernels: prunable kernels, any shapes.
      old_masks: current {0, 1} masks, same shapes. Weights pruned already stay pruned, so masks only shrink.
      sparsity: target fraction of pruned weights in [0, 1), may be traced (vmap over cells).

    Returns:
      New masks, same shapes and dtypes as `old_masks`. Exactly max(round(sparsity · n), already pruned)
      weights are zero, with ties broken by position.
    """
    flat_w = jnp.concatenate([jnp.abs(k).ravel() for k in kernels])
    flat_old = jnp.concatenate([m.ravel() for m in old_masks]) > 0
    n = flat_w.size

    scores = jnp.where(flat_old, flat_w, -1.0)  # pruned weights rank first, so they stay pruned
    order = jnp.argsort(scores, stable=True)
    ranks = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    num_pruned = jnp.round(sparsity * n).astype(jnp.int32)
    keep = (ranks >= num_pruned) & flat_old

    masks, start = [], 0
    for m in old_masks:
        masks.append(keep[start : start + m.size].reshape(m.shape).astype(m.dtype))
        start += m.size
    return tuple(masks)


def achieved_sparsity(masks: Sequence[jax.Array]) -> jax.Array:
    """Fraction of zero entries over all masks."""
    total = sum(m.size for m in masks)
    zeros = sum(jnp.sum(m == 0) for m in masks)
    return zeros / total


def layer_sparsity(masks: Sequence[jax.Array]) -> jax.Array:
    """Fraction of zero entries per mask, shape [num_layers]."""
    return jnp.stack([jnp.mean(m == 0) for m in masks])
