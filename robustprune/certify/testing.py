"""Random masked networks and nested masks, for property tests of certificates.

The draws use NumPy, because compiling JAX's counter-based random number generator under `vmap` costs more
than the tests that consume the draws. Every array has a leading batch axis, ready for `jax.vmap`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def random_masked_mlps(
    rng: np.random.Generator, batch: int, layer_sizes: Sequence[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Draw `batch` masked MLPs with `layer_sizes` = (in, hidden…, out) as float64 (kernels, biases).

    Kernel l has shape [batch, in_l, out_l] and bias l [batch, out_l]. Weights are N(0, 1)/√fan_in times a
    gain drawn per network and layer, log-uniform in [0.4, 2.5], so networks range from contracting to
    expanding. Each network and layer keeps each weight with a density drawn uniformly in [0.2, 1]. Biases
    are N(0, 0.5²).
    """
    kernels, biases = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        gain = np.exp(rng.uniform(np.log(0.4), np.log(2.5), (batch, 1, 1)))
        weights = rng.normal(size=(batch, fan_in, fan_out)) * gain / np.sqrt(fan_in)
        density = rng.uniform(0.2, 1.0, (batch, 1, 1))
        mask = rng.uniform(size=(batch, fan_in, fan_out)) < density
        kernels.append(np.where(mask, weights, 0.0))
        biases.append(0.5 * rng.normal(size=(batch, fan_out)))
    return kernels, biases


def nested_masks(
    rng: np.random.Generator, batch: int, shapes: Sequence[tuple[int, int]], densities: Sequence[float]
) -> list[np.ndarray]:
    """Draw masks that only shrink as density falls: one float64 [batch, steps, in, out] array per layer.

    Every weight gets one uniform score, and step s keeps the weights whose score is below densities[s].
    With `densities` non-increasing, each step's mask is contained in the previous step's mask.
    """
    thresholds = np.asarray(densities)[None, :, None, None]
    masks = []
    for fan_in, fan_out in shapes:
        scores = rng.uniform(size=(batch, 1, fan_in, fan_out))
        masks.append((scores < thresholds).astype(np.float64))
    return masks
