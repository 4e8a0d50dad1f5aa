"""Operator norms of the linear map x ↦ x @ W for a kernel W stored as [in, out].

In the column-vector notation of the literature this map is Wᵀ, so row and column sums swap. The ℓ∞→ℓ∞
norm of x ↦ x @ W is the maximum absolute column sum of W as stored. The ℓ1→ℓ1 norm is the maximum
absolute row sum. Norm names are 'linf', 'l2' and 'l1'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SUPPORTED_PAIRS = frozenset(
    {("linf", "linf"), ("linf", "l2"), ("l2", "l2"), ("l2", "linf"), ("l1", "l1"), ("l1", "l2"), ("l1", "linf")}
)
"""(input norm, output norm) pairs that `operator_norm` accepts."""


def spectral_norm(kernel: jax.Array) -> jax.Array:
    """Largest singular value of `kernel`, computed exactly by SVD (not by power iteration)."""
    return jnp.linalg.svd(kernel, compute_uv=False)[..., 0]


def frobenius_norm(kernel: jax.Array) -> jax.Array:
    """Frobenius norm of `kernel`, an upper bound on the spectral norm."""
    return jnp.sqrt(jnp.sum(jnp.square(kernel)))


def operator_norm(kernel: jax.Array, in_norm: str, out_norm: str) -> jax.Array:
    """Bound ‖x ↦ x @ W‖ from the `in_norm` ball into `out_norm` from above, for W of shape [in, out].

    Supported pairs: every input norm into 'linf' or 'l2', and 'l1' into 'l1'. The value is exact for
    every pair except ℓ∞→ℓ2, whose exact value is NP-hard in general. There it is ‖𝟙 @ |W|‖₂, because
    |x @ W| ≤ 𝟙 @ |W| entrywise when ‖x‖∞ ≤ 1, and that is exact when W ≥ 0. Every value except ℓ2→ℓ2
    never rises when entries of W are set to zero.
    """
    if (in_norm, out_norm) not in SUPPORTED_PAIRS:
        raise ValueError(
            f"Unsupported norm pair {in_norm!r} -> {out_norm!r}. Supported pairs are {sorted(SUPPORTED_PAIRS)}."
        )
    magnitude = jnp.abs(kernel)

    if in_norm == "linf":
        column_sums = jnp.sum(magnitude, axis=0)
        if out_norm == "linf":
            return jnp.max(column_sums)
        return jnp.sqrt(jnp.sum(jnp.square(column_sums)))

    if in_norm == "l2":
        if out_norm == "l2":
            return spectral_norm(kernel)
        return jnp.max(jnp.sqrt(jnp.sum(jnp.square(kernel), axis=0)))

    # The ℓ1 ball is the convex hull of ±e_i, so the norm is the largest output norm of a row of W.
    if out_norm == "l1":
        return jnp.max(jnp.sum(magnitude, axis=1))
    if out_norm == "l2":
        return jnp.max(jnp.sqrt(jnp.sum(jnp.square(kernel), axis=1)))
    return jnp.max(magnitude)
