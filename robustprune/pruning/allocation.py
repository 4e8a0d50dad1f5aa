"""Per-layer sparsity allocation with a traced global target: uniform or ERK, with capped layers.

Every layer l has n_l weights and a density d_l = 1 − s_l. An allocation chooses the densities so that
Σ_l d_l n_l = (1 − s) Σ_l n_l for the global target s:

    d_l(ε) = clip(ε · ρ_l, 1 − c_l, 1),

with ρ_l = 1 for uniform allocation and ρ_l = (n_in + n_out) / (n_in · n_out) for Erdős–Rényi–Kernel (ERK,
Evci et al., 2020, "Rigging the Lottery", for a dense [n_in, n_out] kernel). c_l is the layer's maximum
sparsity (1 for no cap). The scale ε solves the global constraint. Clipping at 1 is the paper's rule that a
layer whose density would exceed 1 stays dense while the other layers are re-solved: the clipped formula is the
fixed point of that iteration. Since the total is a piecewise-linear, nondecreasing function of ε, ε is found
exactly by locating the target between the 2L + 1 breakpoints, which keeps the solver traceable.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

ALLOCATIONS = ("global", "uniform", "erk")  # index = the traced `MaskParams.allocation` value
GLOBAL, UNIFORM, ERK = range(3)


def erk_weights(shapes: Sequence[tuple[int, int]]) -> jax.Array:
    """ρ_l = (n_in + n_out) / (n_in · n_out) for every [n_in, n_out] kernel, shape [L]."""
    return jnp.asarray([(a + b) / (a * b) for a, b in shapes])


def layer_caps(num_layers: int, max_sparsity_first_last: jax.Array) -> jax.Array:
    """Maximum sparsity per layer, shape [L]: the cap for the first and last kernels, 1 for the others."""
    cap = jnp.asarray(max_sparsity_first_last)
    caps = jnp.ones(num_layers, cap.dtype)
    return caps.at[0].set(cap).at[-1].set(cap)


def layer_densities(
    shapes: Sequence[tuple[int, int]], sparsity: jax.Array, allocation: jax.Array, caps: jax.Array
) -> jax.Array:
    """Densities d_l, shape [L], of the uniform or ERK allocation (see the module docstring).

    Args:
      shapes: static kernel shapes [n_in, n_out], in layer order.
      sparsity: global target s in [0, 1), may be traced.
      allocation: traced index into ALLOCATIONS; ERK uses the ERK weights, any other value uniform weights.
      caps: maximum sparsity per layer, shape [L] (see `layer_caps`).

    Returns:
      d_l in [1 − c_l, 1] with Σ d_l n_l = (1 − s) Σ n_l, unless the caps make the target infeasible, in which
      case every layer sits at its cap (the densest allowed network that is still too dense).
    """
    sizes = jnp.asarray([a * b for a, b in shapes], caps.dtype)
    rho = jnp.where(allocation == ERK, erk_weights(shapes).astype(caps.dtype), 1.0)
    low = 1.0 - caps
    target = (1.0 - sparsity) * jnp.sum(sizes)

    def total(scale):
        return jnp.sum(sizes * jnp.clip(scale * rho, low, 1.0))

    breaks = jnp.sort(jnp.concatenate([jnp.zeros(1, caps.dtype), low / rho, 1.0 / rho]))
    totals = jax.vmap(total)(breaks)  # nondecreasing in the breakpoint
    idx = jnp.clip(jnp.searchsorted(totals, target, side="left"), 1, breaks.size - 1)
    e0, e1, f0, f1 = breaks[idx - 1], breaks[idx], totals[idx - 1], totals[idx]
    scale = e0 + (target - f0) * (e1 - e0) / jnp.where(f1 > f0, f1 - f0, 1.0)
    return jnp.clip(jnp.maximum(scale, 0.0) * rho, low, 1.0)


def prune_counts(sizes: Sequence[int], layer_sparsities: jax.Array, total: jax.Array) -> jax.Array:
    """Integer pruned counts per layer that sum to `total` and are each within one of s_l · n_l.

    Largest-remainder rounding: floor every s_l · n_l, then give one more weight to the layers with the largest
    fractional parts until the counts sum to `total` (clipped to [0, n_l]). Shape [L], int32.
    """
    n = jnp.asarray(sizes, layer_sparsities.dtype)
    exact = layer_sparsities * n
    base = jnp.floor(exact)
    remainder = jnp.asarray(total, base.dtype) - jnp.sum(base)
    frac = jnp.where(base < n, exact - base, -1.0)  # a full layer cannot take one more
    order = jnp.argsort(-frac, stable=True)
    rank = jnp.zeros(len(sizes), jnp.int32).at[order].set(jnp.arange(len(sizes), dtype=jnp.int32))
    counts = base + (rank < remainder).astype(base.dtype)
    return jnp.clip(counts, 0, n).astype(jnp.int32)


def max_feasible_sparsity(shapes: Sequence[tuple[int, int]], max_sparsity_first_last: float) -> float:
    """The largest global sparsity the first/last-layer cap allows: Σ c_l n_l / Σ n_l (static Python)."""
    sizes = [a * b for a, b in shapes]
    capped = max_sparsity_first_last * (sizes[0] + sizes[-1]) if len(sizes) > 1 else max_sparsity_first_last * sizes[0]
    return (capped + sum(sizes[1:-1])) / sum(sizes)
