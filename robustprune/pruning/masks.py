"""Binary pruning masks with a traced sparsity target, method and allocation.

Sparsity is the fraction of prunable weights that are exactly zero. A target s over n prunable weights
prunes exactly round(s · n) of them, so the achieved sparsity is within half a weight of the target.

A mask is the result of ranking scores. The method picks the score: the weight's magnitude, or a uniform random
score drawn once per cell from `MaskParams.score_key` (so random masks are nested as sparsity grows). The
allocation picks how the pruned count is split over layers: one global ranking ("global"), or per-layer counts
from `layer_densities` ("uniform", "erk"), each layer ranked on its own. Method and allocation are traced
indices, so one compiled program trains cells of every method and allocation: the program computes every
candidate and selects with `jnp.where`, which costs a few sorts of a few thousand scores per update.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import struct

from robustprune.pruning.allocation import GLOBAL, layer_caps, layer_densities, prune_counts

METHODS = ("magnitude", "random")  # index = the traced `MaskParams.method` value
MAGNITUDE, RANDOM = range(2)


@struct.dataclass
class MaskParams:
    """Traced mask settings of one cell (scalars, so vmap can batch cells with different methods).

    method: int32 index into METHODS. allocation: int32 index into ALLOCATIONS.
    max_sparsity_first_last: float cap on the sparsity of the first and last kernels (1 = no cap).
    score_key: PRNG key of the random scores, fixed for the whole run of a cell.
    """

    method: jax.Array
    allocation: jax.Array
    max_sparsity_first_last: jax.Array
    score_key: jax.Array


def mask_scores(kernels: Sequence[jax.Array], params: MaskParams, salt: int = 0) -> list[jax.Array]:
    """Scores per weight, same shapes as `kernels`: |w| for magnitude, U[0, 1) for random.

    `salt` separates the random scores of different networks (policy 0, critic 1) of one cell.
    """
    key = jax.random.fold_in(params.score_key, salt)
    scores = []
    for i, k in enumerate(kernels):
        noise = jax.random.uniform(jax.random.fold_in(key, i), k.shape, k.dtype)
        scores.append(jnp.where(params.method == RANDOM, noise, jnp.abs(k)))
    return scores


def _ranks(x: jax.Array) -> jax.Array:
    """Position of every entry of the flat array `x` in its stable ascending order, int32."""
    order = jnp.argsort(x, stable=True)
    return jnp.zeros(x.size, jnp.int32).at[order].set(jnp.arange(x.size, dtype=jnp.int32))


def compute_masks(
    kernels: Sequence[jax.Array],
    old_masks: Sequence[jax.Array],
    sparsity: jax.Array,
    params: MaskParams,
    salt: int = 0,
) -> tuple[jax.Array, ...]:
    """New masks for a traced target, method and allocation. Masks only shrink.

    Args:
      kernels: prunable kernels [n_in, n_out], in layer order (the first and last get the cap).
      old_masks: current {0, 1} masks, same shapes. Pruned weights rank first, so they stay pruned.
      sparsity: global target s in [0, 1), may be traced.
      params: traced method, allocation, first/last cap and score key.
      salt: separates the random scores of different networks of one cell.

    Returns:
      Masks, same shapes and dtypes as `old_masks`. Global allocation prunes max(round(s · n), already pruned)
      weights, those of lowest score among the weights the cap leaves eligible (the first c_l · n_l of each
      capped layer's ranking). Uniform and ERK prune in every layer max(k_l, already pruned) weights of lowest
      score, with k_l the largest-remainder counts of `layer_densities`, which sum to round(s · n).
    """
    sizes = [k.size for k in kernels]
    caps = layer_caps(len(kernels), params.max_sparsity_first_last)
    alive = [m.ravel() > 0 for m in old_masks]
    scores = mask_scores(kernels, params, salt)
    flat = [jnp.where(a, s.ravel(), -jnp.inf) for a, s in zip(alive, scores)]
    ranks = [_ranks(f) for f in flat]
    already = jnp.stack([jnp.sum(~a) for a in alive]).astype(jnp.int32)
    total = jnp.round(sparsity * sum(sizes)).astype(jnp.int32)

    shapes = [tuple(k.shape) for k in kernels]
    densities = layer_densities(shapes, sparsity, params.allocation, caps)
    counts = jnp.maximum(prune_counts(sizes, 1.0 - densities, total), already)

    eligible_count = jnp.maximum(jnp.floor(caps * jnp.asarray(sizes, caps.dtype)).astype(jnp.int32), already)
    keyed = [jnp.where(r < eligible_count[i], f, jnp.inf) for i, (r, f) in enumerate(zip(ranks, flat))]
    global_ranks = _ranks(jnp.concatenate(keyed))
    global_keep = global_ranks >= jnp.maximum(total, jnp.sum(already))

    masks, start = [], 0
    for i, m in enumerate(old_masks):
        keep_global = global_keep[start : start + m.size]
        keep = jnp.where(params.allocation == GLOBAL, keep_global, ranks[i] >= counts[i]) & alive[i]
        masks.append(keep.reshape(m.shape).astype(m.dtype))
        start += m.size
    return tuple(masks)


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
