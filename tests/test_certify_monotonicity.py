"""Monotone bounds never rise as masks shrink, but the spectral product can."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustprune import certify
from robustprune.certify.testing import nested_masks

ACTIVATIONS = ("tanh", "relu", "elu", "silu")
SIZES = (4, 6, 6, 4)
BATCH = 64
STEPS = 4
MONOTONE = sorted(name for name, bound in certify.BOUNDS.items() if bound.monotone)
RTOL = 1e-12

# Compilation dominates these tests, so XLA skips its backend optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def draw_masked_sequence(seed, densities):
    """Dense kernels [BATCH, in, out] and nested masks [BATCH, STEPS, in, out] per layer, plus log_std."""
    rng = np.random.default_rng(seed)
    shapes = list(zip(SIZES[:-1], SIZES[1:]))
    kernels = [rng.normal(size=(BATCH, *shape)) / np.sqrt(shape[0]) for shape in shapes]
    masks = nested_masks(rng, BATCH, shapes, densities)
    log_std = rng.uniform(-1.0, 0.5, (BATCH, SIZES[-1]))
    return kernels, masks, log_std


@functools.partial(jax.jit, static_argnames=("activation", "norm"), compiler_options=FAST_COMPILE)
def bounds_along_masks(kernels, masks, log_std, *, activation, norm):
    """Bounds for every network and step: dicts of [BATCH, STEPS] (Gaussian) and [BATCH, STEPS, 2] (categorical)."""

    def at_step(kernels, step_masks, log_std):
        masked = [mask * kernel for mask, kernel in zip(step_masks, kernels)]
        gaussian = certify.gaussian_lipschitz_bounds(masked, log_std, activation=activation, norm=norm)
        categorical = certify.categorical_lipschitz_bounds(masked, activation=activation, norm=norm, n_bins=2)
        return gaussian, categorical

    def per_network(kernels, masks, log_std):
        return jax.vmap(at_step, in_axes=(None, 0, None))(kernels, masks, log_std)

    return jax.vmap(per_network)(kernels, masks, log_std)


def rises(values):
    """Count steps where a bound rose by more than RTOL. The step axis is axis 1."""
    values = np.asarray(values)
    return int(np.sum(values[:, 1:] > values[:, :-1] * (1.0 + RTOL)))


densities_strategy = st.lists(st.floats(0.0, 1.0), min_size=STEPS - 1, max_size=STEPS - 1).map(
    lambda values: [1.0, *sorted(values, reverse=True)]
)


@pytest.mark.parametrize("norm", certify.NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), densities=densities_strategy)
def test_monotone_bounds_never_rise(activation, norm, seed, densities):
    kernels, masks, log_std = draw_masked_sequence(seed, densities)
    gaussian, categorical = bounds_along_masks(kernels, masks, log_std, activation=activation, norm=norm)

    for name in MONOTONE:
        if name in gaussian:
            assert rises(gaussian[name]) == 0, f"Gaussian {name} rose"
            assert rises(categorical[name]) == 0, f"categorical {name} rose"


def test_nested_masks_are_nested():
    _, masks, _ = draw_masked_sequence(0, [1.0, 0.7, 0.4, 0.1])

    assert bool(certify.masks_are_nested([mask[0] for mask in masks]))
    assert not bool(certify.masks_are_nested([mask[0, ::-1] for mask in masks]))


def test_spectral_rises_on_concrete_matrix():
    kernels = [jnp.array([[1.0, 1.0], [1.0, -1.0]])]
    shrinking = [jnp.array([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 0.0]]])]

    assert float(certify.spectral_increase_fraction(kernels, shrinking)) == 1.0
    assert float(certify.spectral_increase_fraction(kernels, [shrinking[0][::-1]])) == 0.0


def test_spectral_rises_on_some_random_networks():
    kernels, masks, log_std = draw_masked_sequence(1, [1.0, 0.9, 0.8, 0.7])
    fractions = jax.vmap(certify.spectral_increase_fraction)(kernels, masks, log_std)

    assert float(jnp.max(fractions)) > 0.0


def test_increase_fractions_zero_for_monotone_bounds():
    kernels, masks, log_std = draw_masked_sequence(2, [1.0, 0.8, 0.5, 0.2])
    network = 3
    measure = jax.jit(
        functools.partial(certify.gaussian_bound_increase_fractions, activation="silu", norm="linf")
    )
    fractions = measure([kernel[network] for kernel in kernels], [mask[network] for mask in masks], log_std[network])

    for name, fraction in fractions.items():
        if certify.BOUNDS[name].monotone:
            assert float(fraction) == 0.0, name
    assert "spectral_product" in fractions


def test_increase_fraction_counts_rises():
    values = jnp.array([3.0, 2.0, 2.5, 2.5, 1.0])

    assert float(certify.increase_fraction(values)) == pytest.approx(0.25)
