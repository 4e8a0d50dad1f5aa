"""The multilayer perceptron that every certificate reasons about, and the scalings folded into it.

A network is two lists: `kernels`, each of shape [in, out] and already multiplied by its binary pruning
mask, and `biases`, each of shape [out]. Layer l computes h_l = σ(h_{l−1} @ W_l + b_l), and the last layer
has no activation. This is the flax `nn.Dense` convention y = x @ W + b, so the map x ↦ x @ W has the
matrix Wᵀ in the column-vector notation of the papers.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from robustprune.certify.activations import ACTIVATIONS, check_activation

NORMS = ("linf", "l2", "l1")
"""Names of the input balls: ℓ∞, ℓ2 and ℓ1."""


def check_norm(norm: str, supported: Sequence[str] = NORMS) -> None:
    """Raise a ValueError unless `norm` is one of `supported`."""
    if norm not in supported:
        raise ValueError(f"Unsupported norm {norm!r}. Use one of {list(supported)}.")


def check_kernels(kernels: Sequence[jax.Array], biases: Sequence[jax.Array] | None = None) -> None:
    """Raise a ValueError unless the kernel shapes chain ([in, h1], [h1, h2], …) and match the biases."""
    if len(kernels) == 0:
        raise ValueError("Expected at least one kernel, got an empty list.")
    for index, kernel in enumerate(kernels):
        if kernel.ndim != 2:
            raise ValueError(f"Kernel {index} must have shape [in, out], got shape {kernel.shape}.")
        if index > 0 and kernels[index - 1].shape[1] != kernel.shape[0]:
            raise ValueError(
                f"Kernel {index} has input size {kernel.shape[0]}, but kernel {index - 1} "
                f"has output size {kernels[index - 1].shape[1]}."
            )
    if biases is None:
        return
    if len(biases) != len(kernels):
        raise ValueError(f"Got {len(kernels)} kernels but {len(biases)} biases.")
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
        if bias.shape != (kernel.shape[1],):
            raise ValueError(f"Bias {index} must have shape ({kernel.shape[1]},), got {bias.shape}.")


def mlp_apply(
    kernels: Sequence[jax.Array], biases: Sequence[jax.Array], x: jax.Array, *, activation: str
) -> jax.Array:
    """Evaluate the network at x of shape [..., in], giving shape [..., out]."""
    check_activation(activation)
    function = ACTIVATIONS[activation]
    hidden = x
    for kernel, bias in zip(kernels[:-1], biases[:-1]):
        hidden = function(hidden @ kernel + bias)
    return hidden @ kernels[-1] + biases[-1]


def fold_scales(
    kernels: Sequence[jax.Array],
    *,
    in_scale: jax.Array | None = None,
    out_scale: jax.Array | None = None,
) -> list[jax.Array]:
    """Fold an input and an output diagonal scaling into the first and last kernels.

    The returned kernels compute x ↦ out_scale ⊙ f(in_scale ⊙ x) up to biases. `in_scale` has shape [in]:
    1/std of the observation normalizer, so a ball in raw units becomes a ball for the folded network.
    `out_scale` has shape [out]: exp(−log_std) for a Gaussian policy, which turns μ into Σ^{-1/2} μ.
    """
    folded = list(kernels)
    if in_scale is not None:
        if in_scale.shape != (folded[0].shape[0],):
            raise ValueError(f"in_scale must have shape ({folded[0].shape[0]},), got {in_scale.shape}.")
        folded[0] = in_scale[:, None] * folded[0]
    if out_scale is not None:
        if out_scale.shape != (folded[-1].shape[1],):
            raise ValueError(f"out_scale must have shape ({folded[-1].shape[1]},), got {out_scale.shape}.")
        folded[-1] = folded[-1] * out_scale[None, :]
    return folded


def split_factorized_kernel(kernel: jax.Array, n_bins: int) -> jax.Array:
    """Split a last kernel [hidden, action_dim·n_bins] into [action_dim, hidden, n_bins].

    The logits of action dimension d are the columns d·n_bins … (d+1)·n_bins − 1, which is what reshaping
    the last axis of the logits to [action_dim, n_bins] gives.
    """
    hidden, width = kernel.shape
    if n_bins <= 0 or width % n_bins != 0:
        raise ValueError(f"n_bins={n_bins} must be positive and divide the number of logits, {width}.")
    return jnp.transpose(kernel.reshape(hidden, width // n_bins, n_bins), (1, 0, 2))
