"""Interval bound propagation: sound against dense sampling inside the ball, exact where it should be.

The sweep draws 256 networks, states and radii for each activation and norm (3,072 draws), and evaluates
each network at 256 points of its ball: interior points and points on the boundary (vertices for ℓ∞ and ℓ1).
Float64, with a violation counted beyond 1e-12 relative plus 1e-12 absolute.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune import certify
from robustprune.certify.testing import random_masked_mlps

ACTIVATIONS = ("tanh", "relu", "elu", "silu")
DRAWS = 256
SAMPLES = 256
SIZES = (4, 6, 6, 6)
N_BINS = 3
TOLERANCE = 1e-12

# Compilation dominates these tests, so XLA skips its backend optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def unit_ball_points(rng, norm, shape):
    """Points of the unit `norm` ball, [*shape, obs_dim]: half inside, half on the boundary."""
    size = SIZES[0]
    half = shape[-1] // 2
    if norm == "linf":
        inside = rng.uniform(-1.0, 1.0, (*shape[:-1], half, size))
        boundary = rng.choice([-1.0, 1.0], (*shape[:-1], half, size))
    elif norm == "l2":
        direction = rng.normal(size=(*shape[:-1], shape[-1], size))
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        radius = rng.uniform(size=(*shape[:-1], half, 1)) ** (1.0 / size)
        inside, boundary = direction[..., :half, :] * radius, direction[..., half:, :]
    else:
        spacings = rng.exponential(size=(*shape[:-1], half, size + 1))
        inside = spacings[..., :size] / spacings.sum(-1, keepdims=True) * rng.choice([-1.0, 1.0], (*shape[:-1], half, size))
        axes = rng.integers(0, size, (*shape[:-1], half))
        boundary = np.eye(size)[axes] * rng.choice([-1.0, 1.0], (*shape[:-1], half, 1))
    return np.concatenate([inside, boundary], axis=-2)


def draw_cases(seed, norm):
    rng = np.random.default_rng(seed)
    kernels, biases = random_masked_mlps(rng, DRAWS, SIZES)
    eps = np.exp(rng.uniform(np.log(0.01), np.log(2.0), DRAWS))
    x = 1.5 * rng.normal(size=(DRAWS, SIZES[0]))
    points = x[:, None, :] + eps[:, None, None] * unit_ball_points(rng, norm, (DRAWS, SAMPLES))
    log_std = rng.uniform(-1.5, 0.5, (DRAWS, SIZES[-1]))
    return {"kernels": kernels, "biases": biases, "x": x, "eps": eps, "points": points, "log_std": log_std}


def check_case(case, activation, norm):
    kernels, biases, x, eps, log_std = (case[name] for name in ("kernels", "biases", "x", "eps", "log_std"))
    apply = functools.partial(certify.mlp_apply, kernels, biases, activation=activation)
    outputs = jax.vmap(apply)(case["points"])
    center = apply(x)
    lower, upper = certify.ibp_bounds(kernels, biases, x, eps, activation=activation, norm=norm)

    sampled_delta = jnp.linalg.norm((outputs - center) * jnp.exp(-log_std), axis=-1)
    sampled_tv = certify.categorical_tv(outputs, jnp.broadcast_to(center, outputs.shape), n_bins=N_BINS)
    return {
        "below_lower": jnp.sum(outputs < lower - TOLERANCE * (1 + jnp.abs(lower))),
        "above_upper": jnp.sum(outputs > upper + TOLERANCE * (1 + jnp.abs(upper))),
        "sampled_delta": jnp.max(sampled_delta),
        "delta_bound": certify.local_gaussian_delta_bound(
            kernels, biases, log_std, x, eps, activation=activation, norm=norm
        ),
        "sampled_tv": jnp.max(sampled_tv),
        "tv_bound": certify.local_categorical_tv_bound(
            kernels, biases, x, eps, activation=activation, norm=norm, n_bins=N_BINS
        ),
        "width": jnp.mean(upper - lower),
    }


@functools.partial(jax.jit, static_argnames=("activation", "norm"), compiler_options=FAST_COMPILE)
def run_sweep(cases, *, activation, norm):
    return jax.vmap(lambda case: check_case(case, activation, norm))(cases)


@pytest.mark.parametrize("norm", certify.NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_ibp_contains_sampled_outputs(activation, norm):
    seed = 10 * ACTIVATIONS.index(activation) + certify.NORMS.index(norm)
    result = run_sweep(draw_cases(seed, norm), activation=activation, norm=norm)

    assert int(jnp.sum(result["below_lower"])) == 0
    assert int(jnp.sum(result["above_upper"])) == 0
    assert np.all(result["sampled_delta"] <= result["delta_bound"] * (1 + TOLERANCE) + TOLERANCE)
    assert np.all(result["sampled_tv"] <= result["tv_bound"] * (1 + TOLERANCE) + TOLERANCE)


def test_ibp_exact_for_linear_network():
    rng = np.random.default_rng(0)
    kernel, bias = jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=3))
    x, eps = jnp.asarray(rng.normal(size=4)), 0.3
    center = x @ kernel + bias
    expected_radius = {
        "linf": eps * jnp.sum(jnp.abs(kernel), axis=0),
        "l2": eps * jnp.linalg.norm(kernel, axis=0),
        "l1": eps * jnp.max(jnp.abs(kernel), axis=0),
    }

    for norm, radius in expected_radius.items():
        lower, upper = certify.ibp_bounds([kernel], [bias], x, eps, activation="tanh", norm=norm)
        np.testing.assert_allclose(lower, center - radius, rtol=1e-12, err_msg=norm)
        np.testing.assert_allclose(upper, center + radius, rtol=1e-12, err_msg=norm)


def test_ibp_smaller_balls_give_nested_intervals():
    kernels, biases = random_masked_mlps(np.random.default_rng(1), 1, SIZES)
    kernels = [jnp.asarray(kernel[0]) for kernel in kernels]
    biases = [jnp.asarray(bias[0]) for bias in biases]
    x = jnp.array([0.2, -0.1, 0.5, 1.0])
    intervals = {
        norm: certify.ibp_bounds(kernels, biases, x, 0.4, activation="silu", norm=norm) for norm in certify.NORMS
    }

    # The ℓ1 ball lies inside the ℓ2 ball, which lies inside the ℓ∞ ball.
    for inner, outer in (("l1", "l2"), ("l2", "linf")):
        assert np.all(intervals[inner][0] >= intervals[outer][0] - 1e-12), (inner, outer)
        assert np.all(intervals[inner][1] <= intervals[outer][1] + 1e-12), (inner, outer)


def test_ibp_with_in_scale_matches_scaled_radius():
    kernels, biases = random_masked_mlps(np.random.default_rng(2), 1, SIZES)
    kernels = [jnp.asarray(kernel[0]) for kernel in kernels]
    biases = [jnp.asarray(bias[0]) for bias in biases]
    x = jnp.array([0.2, -0.1, 0.5, 1.0])

    scaled = certify.ibp_bounds(kernels, biases, x, 0.1, activation="elu", in_scale=jnp.full(4, 3.0))
    reference = certify.ibp_bounds(kernels, biases, x, 0.3, activation="elu")

    np.testing.assert_allclose(scaled[0], reference[0], rtol=1e-12)
    np.testing.assert_allclose(scaled[1], reference[1], rtol=1e-12)


def test_local_gaussian_tv_zero_at_zero_radius():
    kernels, biases = random_masked_mlps(np.random.default_rng(3), 1, SIZES)
    kernels = [jnp.asarray(kernel[0]) for kernel in kernels]
    biases = [jnp.asarray(bias[0]) for bias in biases]

    tv = certify.local_gaussian_tv_bound(kernels, biases, jnp.zeros(6), jnp.ones(4), 0.0, activation="silu")

    assert float(tv) == pytest.approx(0.0, abs=1e-12)
