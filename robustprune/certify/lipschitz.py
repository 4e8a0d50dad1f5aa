"""Global Lipschitz bounds of a masked MLP, and their registry.

Kernels are stored [in, out] (x ↦ x @ W, see `norms.py`). In that row-vector form, the Jacobian of f at any
x is J = W_1 D_1 W_2 D_2 ⋯ D_{L−1} W_L, where each D_l is diagonal with entries σ'(·) ∈ [a, b] ⊆ [−ρ, ρ].
Each bound below caps the operator norm of J from an input norm ('linf', 'l2', 'l1') into an output norm
('l2' for the Gaussian total variation, 'linf' for categorical logits). It holds uniformly in x, so it
bounds the Lipschitz constant of f.

A bound is called monotone when setting any kernel entry to zero never raises it. Bounds built from ℓ∞ and
ℓ1 operator norms, Frobenius norms and products of |W| are monotone, because each of them grows with every
|W_ij|. The spectral norm is not monotone: [[1, 1], [1, −1]] has spectral norm 1.414, and masking one entry
to get [[1, 1], [1, 0]] raises it to 1.618. `tests/test_certify_monotonicity.py` checks every bound flagged
monotone on random nested masks.

Conversions between norms: ‖x‖₂ ≤ √n·‖x‖∞ and ‖x‖₂ ≤ ‖x‖₁ on the input side (n = input size), and
‖y‖∞ ≤ ‖y‖₂ on the output side.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from robustprune.certify.activations import ACTIVATION_SLOPE_RANGE, check_activation
from robustprune.certify.mlp import NORMS, check_kernels, check_norm, fold_scales, split_factorized_kernel
from robustprune.certify.norms import frobenius_norm, operator_norm

SlopeRange = tuple[float, float]
BoundFunction = Callable[[Sequence[jax.Array], SlopeRange, str, str], jax.Array]


@dataclasses.dataclass(frozen=True)
class LipschitzBound:
    """A global Lipschitz bound: its name, whether masking can raise it, and the input norms it covers.

    `compute(kernels, slope_range, in_norm, out_norm)` returns the scalar bound for kernels that already
    contain the masks and any folded scaling.
    """

    name: str
    monotone: bool
    norms: tuple[str, ...]
    description: str
    compute: BoundFunction


def _slope_bound(slope_range: SlopeRange) -> float:
    low, high = slope_range
    return max(abs(low), abs(high))


def _to_l2_factor(kernels: Sequence[jax.Array], in_norm: str) -> float:
    """Factor c with ‖x‖₂ ≤ c·‖x‖_in for inputs of the first kernel."""
    return math.sqrt(kernels[0].shape[0]) if in_norm == "linf" else 1.0


def layer_product(kernels: Sequence[jax.Array], slope_range: SlopeRange, in_norm: str, out_norm: str) -> jax.Array:
    """Bound the Lipschitz constant by ρ^{L−1} · ‖W_L‖_{p→q} · Π_{l<L} ‖W_l‖_{p→p}.

    Here p = in_norm and q = out_norm. For p = ℓ∞ and q = ℓ2, the last factor is the norm of the column
    sums of |W_L| (see `operator_norm`).
    """
    rho = _slope_bound(slope_range)
    value = operator_norm(kernels[-1], in_norm, out_norm)
    for kernel in kernels[:-1]:
        value = value * rho * operator_norm(kernel, in_norm, in_norm)
    return value


def spectral_product(kernels: Sequence[jax.Array], slope_range: SlopeRange, in_norm: str, out_norm: str) -> jax.Array:
    """Bound the Lipschitz constant by c · ρ^{L−1} · ‖W_L‖_{2→q} · Π_{l<L} ‖W_l‖₂, with exact singular values.

    The factor c converts the input ball to ℓ2: √n for ℓ∞ and 1 for ℓ2 and ℓ1.
    """
    return _to_l2_factor(kernels, in_norm) * layer_product(kernels, slope_range, "l2", out_norm)


def frobenius_product(kernels: Sequence[jax.Array], slope_range: SlopeRange, in_norm: str, out_norm: str) -> jax.Array:
    """Bound the Lipschitz constant by c · ρ^{L−1} · Π_l ‖W_l‖_F, with c as in `spectral_product`.

    The Frobenius norm bounds both ‖·‖₂ and ‖·‖_{2→∞} from above.
    """
    rho = _slope_bound(slope_range)
    value = _to_l2_factor(kernels, in_norm) * frobenius_norm(kernels[-1])
    for kernel in kernels[:-1]:
        value = value * rho * frobenius_norm(kernel)
    return value


def _absolute_chain(first: jax.Array, kernels: Sequence[jax.Array]) -> jax.Array:
    product = first
    for kernel in kernels:
        product = product @ jnp.abs(kernel)
    return product


def abs_product(kernels: Sequence[jax.Array], slope_range: SlopeRange, in_norm: str, out_norm: str) -> jax.Array:
    """Bound the Lipschitz constant by ρ^{L−1} · ‖ |W_1| @ ⋯ @ |W_L| ‖_{p→q}.

    Entrywise |J| ≤ ρ^{L−1} |W_1| ⋯ |W_L|, and the operator norm of a non-negative matrix, computed exactly
    here, grows with its entries. For p = ℓ∞ and q = ℓ2 the value is ρ^{L−1} ‖ 𝟙 @ |W_1| @ ⋯ @ |W_L| ‖₂.
    """
    rho = _slope_bound(slope_range)
    product = _absolute_chain(jnp.abs(kernels[0]), kernels[1:])
    return rho ** (len(kernels) - 1) * operator_norm(product, in_norm, out_norm)


def signed_pair_matrix(first: jax.Array, second: jax.Array, slope_range: SlopeRange) -> jax.Array:
    """Bound |W_1 D W_2| entrywise over every diagonal D with entries in the slope interval [a, b].

    W_1 is [in, hidden] and W_2 is [hidden, out], and so is the result [in, out]. Entry (i, j) of W_1 D W_2
    is Σ_k c_k d_k with c_k = W1_ik·W2_kj. With P = Σ_k max(c_k, 0) and N = Σ_k max(−c_k, 0), it lies in
    [aP − bN, bP − aN], so its magnitude is at most max(bP − aN, bN − aP). The interval is widened to
    contain 0, so the bound grows with P and N and is monotone under masking. It is never above
    ρ·(|W_1| @ |W_2|), and it is tighter when the activation is monotone (a = 0).
    """
    low = min(slope_range[0], 0.0)
    high = max(slope_range[1], 0.0)
    first_pos, first_neg = jnp.maximum(first, 0.0), jnp.maximum(-first, 0.0)
    second_pos, second_neg = jnp.maximum(second, 0.0), jnp.maximum(-second, 0.0)
    positive = first_pos @ second_pos + first_neg @ second_neg
    negative = first_pos @ second_neg + first_neg @ second_pos
    return jnp.maximum(high * positive - low * negative, high * negative - low * positive)


def signed_pair_product(kernels: Sequence[jax.Array], slope_range: SlopeRange, in_norm: str, out_norm: str) -> jax.Array:
    """Bound the Lipschitz constant by ρ^{L−2} · ‖ M @ |W_3| @ ⋯ @ |W_L| ‖_{p→q}, M from `signed_pair_matrix`.

    A one-layer network has no activation, and the value then equals `abs_product`.
    """
    if len(kernels) == 1:
        return operator_norm(jnp.abs(kernels[0]), in_norm, out_norm)
    rho = _slope_bound(slope_range)
    pair = signed_pair_matrix(kernels[0], kernels[1], slope_range)
    product = _absolute_chain(pair, kernels[2:])
    return rho ** (len(kernels) - 2) * operator_norm(product, in_norm, out_norm)


BOUNDS: dict[str, LipschitzBound] = {
    bound.name: bound
    for bound in (
        LipschitzBound(
            name="linf_layer_product",
            monotone=True,
            norms=("linf",),
            description="Per-layer product of ℓ∞→ℓ∞ norms (max absolute column sums of the [in, out] kernels). "
            "The last layer contributes the ℓ2 norm (Gaussian) or the max (categorical) of its absolute column sums.",
            compute=layer_product,
        ),
        LipschitzBound(
            name="l1_layer_product",
            monotone=True,
            norms=("l1",),
            description="Per-layer product of ℓ1→ℓ1 norms (max absolute row sums of the [in, out] kernels), "
            "times the largest ℓ2 (or ℓ∞) norm of a row of W_L for the last layer.",
            compute=layer_product,
        ),
        LipschitzBound(
            name="spectral_product",
            monotone=False,
            norms=NORMS,
            description="Product of exact spectral norms (SVD), times √n for an ℓ∞ input ball. "
            "Masking can raise it.",
            compute=spectral_product,
        ),
        LipschitzBound(
            name="frobenius_product",
            monotone=True,
            norms=NORMS,
            description="Product of Frobenius norms, times √n for an ℓ∞ input ball.",
            compute=frobenius_product,
        ),
        LipschitzBound(
            name="abs_product",
            monotone=True,
            norms=NORMS,
            description="ρ^{L−1} times the exact operator norm of the non-negative matrix |W_1|⋯|W_L|.",
            compute=abs_product,
        ),
        LipschitzBound(
            name="signed_pair_product",
            monotone=True,
            norms=NORMS,
            description="Like abs_product, but the first two layers use the kernels' signs and the "
            "activation's slope interval. Never looser than abs_product.",
            compute=signed_pair_product,
        ),
    )
}
"""Registry of global Lipschitz bounds, by name."""


def bound_names(norm: str, names: Sequence[str] | None = None) -> list[str]:
    """List the registered bounds that support `norm`, optionally restricted to `names`."""
    check_norm(norm)
    if names is not None:
        unknown = sorted(set(names) - set(BOUNDS))
        if unknown:
            raise ValueError(f"Unknown bound names {unknown}. Registered bounds are {sorted(BOUNDS)}.")
    selected = list(BOUNDS) if names is None else list(names)
    return [name for name in selected if norm in BOUNDS[name].norms]


def _compute_bounds(
    kernels: Sequence[jax.Array], activation: str, norm: str, out_norm: str, names: Sequence[str] | None
) -> dict[str, jax.Array]:
    slope_range = ACTIVATION_SLOPE_RANGE[activation]
    return {name: BOUNDS[name].compute(kernels, slope_range, norm, out_norm) for name in bound_names(norm, names)}


def gaussian_lipschitz_bounds(
    kernels: Sequence[jax.Array],
    log_std: jax.Array,
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, jax.Array]:
    """Bound the Lipschitz constant of x ↦ Σ^{-1/2} μ(x) from the `norm` ball into ℓ2, once per bound.

    Args:
      kernels: masked kernels of the mean network, each [in, out]. The last one has out = action_dim.
      log_std: [action_dim], the state-independent log standard deviation, so Σ^{-1/2} = diag(exp(−log_std)).
      activation: 'tanh', 'relu', 'elu' or 'silu'.
      norm: input ball, 'linf', 'l2' or 'l1'.
      in_scale: optional [obs_dim] factor 1/std of the observation normalizer. Pass it when the ball is
        measured in raw observation units, x_norm = (x_raw − mean)·in_scale.
      names: optional subset of `BOUNDS`. By default, every bound that supports `norm` is computed.

    Returns:
      A dict from bound name to a scalar L_δ with ‖Σ^{-1/2}(μ(x) − μ(x'))‖₂ ≤ L_δ·‖x − x'‖ for all x, x'.
      Feed it to `gaussian_tv_bound`.
    """
    check_activation(activation)
    check_norm(norm)
    check_kernels(kernels)
    folded = fold_scales(kernels, in_scale=in_scale, out_scale=jnp.exp(-log_std))
    return _compute_bounds(folded, activation, norm, "l2", names)


def categorical_lipschitz_bounds(
    kernels: Sequence[jax.Array],
    *,
    activation: str,
    norm: str = "linf",
    in_scale: jax.Array | None = None,
    n_bins: int | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, jax.Array]:
    """Bound the Lipschitz constant of the logits from the `norm` ball into ℓ∞, once per bound.

    With `n_bins=None` the logits form one categorical distribution and each value is a scalar. With
    `n_bins` set, the last axis of the logits is read as [action_dim, n_bins] (a factorized policy), and each
    value has shape [action_dim]: the bound on ‖Δz_d‖∞ / ‖Δx‖ for each action dimension d. Feed it to
    `categorical_tv_bound`. Other arguments are as in `gaussian_lipschitz_bounds`.
    """
    check_activation(activation)
    check_norm(norm)
    check_kernels(kernels)
    folded = fold_scales(kernels, in_scale=in_scale)
    if n_bins is None:
        return _compute_bounds(folded, activation, norm, "linf", names)

    per_dimension_kernels = split_factorized_kernel(folded[-1], n_bins)

    def bounds_for_dimension(last_kernel: jax.Array) -> dict[str, jax.Array]:
        return _compute_bounds([*folded[:-1], last_kernel], activation, norm, "linf", names)

    return jax.vmap(bounds_for_dimension)(per_dimension_kernels)
