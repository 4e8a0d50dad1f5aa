"""Slope bounds and interval images of the activations, checked on dense grids in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit

from robustprune import certify
from robustprune.certify import activations

GRID = np.linspace(-30.0, 30.0, 600_001)


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def silu_slope(x):
    sigmoid = expit(x)
    return sigmoid * (1.0 + x * (1.0 - sigmoid))


def test_silu_max_slope_is_tight_upper_bound():
    slopes = silu_slope(GRID)

    assert slopes.max() <= activations.SILU_MAX_SLOPE
    assert slopes.max() >= activations.SILU_MAX_SLOPE - 1e-9
    assert certify.ACTIVATION_SLOPE["silu"] == activations.SILU_MAX_SLOPE


def test_silu_min_slope_is_tight_lower_bound():
    slopes = silu_slope(GRID)

    assert slopes.min() >= activations.SILU_MIN_SLOPE
    assert slopes.min() <= activations.SILU_MIN_SLOPE + 1e-9


def test_silu_slope_extrema_solve_stationarity():
    # σ''(x) = 0 ⇔ x·tanh(x/2) = 2.
    argmax = brentq(lambda x: x * np.tanh(x / 2) - 2.0, 1.0, 4.0, xtol=1e-15)

    assert silu_slope(argmax) <= activations.SILU_MAX_SLOPE
    assert silu_slope(argmax) == pytest.approx(activations.SILU_MAX_SLOPE, abs=1e-10)
    assert silu_slope(-argmax) == pytest.approx(activations.SILU_MIN_SLOPE, abs=1e-10)


def test_silu_minimum_value():
    values = GRID * expit(GRID)
    argmin = brentq(lambda x: 1.0 + x * (1.0 - expit(x)), -2.0, -1.0, xtol=1e-15)

    assert values.min() >= activations.SILU_MIN_VALUE
    assert values.min() <= activations.SILU_MIN_VALUE + 1e-9
    assert argmin == pytest.approx(activations.SILU_ARGMIN, abs=1e-12)
    assert argmin + 1.0 == pytest.approx(activations.SILU_MIN_VALUE, abs=1e-10)


@pytest.mark.parametrize("activation", sorted(certify.ACTIVATIONS))
def test_slope_range_contains_derivative(activation):
    low, high = certify.ACTIVATION_SLOPE_RANGE[activation]
    derivative = jax.vmap(jax.grad(certify.ACTIVATIONS[activation]))(jnp.asarray(GRID[::10]))

    assert float(jnp.min(derivative)) >= low
    assert float(jnp.max(derivative)) <= high
    assert certify.ACTIVATION_SLOPE[activation] == max(abs(low), abs(high))


def test_monotone_slopes_are_one():
    for activation in ("tanh", "relu", "elu"):
        assert certify.ACTIVATION_SLOPE[activation] == 1.0


@pytest.mark.parametrize("activation", sorted(certify.ACTIVATIONS))
def test_interval_image_matches_dense_grid(activation):
    rng = np.random.default_rng(1)
    lower = rng.uniform(-4.0, 2.0, 400)
    upper = lower + rng.uniform(0.0, 3.0, 400)
    fractions = np.linspace(0.0, 1.0, 4001)
    points = lower[:, None] + fractions[None, :] * (upper - lower)[:, None]
    values = np.asarray(certify.ACTIVATIONS[activation](jnp.asarray(points)))

    image_lower, image_upper = certify.interval_activation(jnp.asarray(lower), jnp.asarray(upper), activation)

    assert np.all(values.min(axis=1) >= np.asarray(image_lower) - 1e-12)
    assert np.all(values.max(axis=1) <= np.asarray(image_upper) + 1e-12)
    # Tight: the grid comes within its spacing of both ends of the image.
    assert np.all(values.min(axis=1) - np.asarray(image_lower) <= 1e-5)
    assert np.all(np.asarray(image_upper) - values.max(axis=1) <= 1e-12)


def test_silu_interval_uses_interior_minimum():
    image_lower, image_upper = certify.interval_activation(jnp.array(-2.0), jnp.array(0.0), "silu")
    endpoint_min = min(float(jax.nn.silu(-2.0)), 0.0)

    assert float(image_lower) == pytest.approx(activations.SILU_MIN_VALUE, abs=1e-12)
    assert float(image_lower) < endpoint_min - 0.03
    assert float(image_upper) == 0.0


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="Unsupported activation"):
        certify.interval_activation(jnp.zeros(2), jnp.ones(2), "gelu")
