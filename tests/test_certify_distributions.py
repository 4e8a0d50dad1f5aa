"""TV and KL formulas, categorical TV bounds, certified radii and value-gap bounds."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm as normal

from robustprune import certify

MC_SAMPLES = 400_000


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_gaussian_tv_equals_cdf_form():
    delta = jnp.linspace(0.01, 12.0, 200)

    np.testing.assert_allclose(certify.gaussian_tv(delta), 2.0 * normal.cdf(delta / 2.0) - 1.0, rtol=1e-12, atol=1e-15)


def test_gaussian_tv_accurate_for_tiny_delta():
    # For small δ, 2Φ(δ/2) − 1 ≈ δ/√(2π).
    assert float(certify.gaussian_tv(1e-12)) == pytest.approx(1e-12 / np.sqrt(2.0 * np.pi), rel=1e-9)


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_gaussian_tv_and_kl_match_monte_carlo(delta):
    rng = np.random.default_rng(int(delta * 10))
    std = np.array([0.5, 1.0, 2.0])
    direction = np.array([1.0, -2.0, 3.0]) / np.sqrt(14.0)
    shift = delta * direction * std  # so that ‖Σ^{-1/2} shift‖₂ = delta
    samples = rng.normal(size=(MC_SAMPLES, 3)) * std
    # log p(x) − log q(x) for P = N(0, Σ), Q = N(shift, Σ).
    log_ratio = (np.sum(((samples - shift) / std) ** 2, axis=1) - np.sum((samples / std) ** 2, axis=1)) / 2.0
    tv_terms = np.maximum(0.0, 1.0 - np.exp(-log_ratio))

    tv_error = tv_terms.std() / np.sqrt(MC_SAMPLES)
    kl_error = log_ratio.std() / np.sqrt(MC_SAMPLES)

    assert abs(tv_terms.mean() - float(certify.gaussian_tv(delta))) <= 4.0 * tv_error
    assert abs(log_ratio.mean() - float(certify.gaussian_kl(delta))) <= 4.0 * kl_error


def test_gaussian_bounds_compose_with_eps():
    assert float(certify.gaussian_tv_bound(0.1, 3.0)) == pytest.approx(float(certify.gaussian_tv(0.3)), rel=1e-14)
    assert float(certify.gaussian_kl_bound(0.1, 3.0)) == pytest.approx(0.045, rel=1e-12)


def brute_force_joint_tv(logits_a, logits_b, n_bins):
    probabilities_a = jax.nn.softmax(np.reshape(logits_a, (-1, n_bins)), axis=-1)
    probabilities_b = jax.nn.softmax(np.reshape(logits_b, (-1, n_bins)), axis=-1)
    total = 0.0
    for action in itertools.product(range(n_bins), repeat=probabilities_a.shape[0]):
        joint_a = np.prod([probabilities_a[d, k] for d, k in enumerate(action)])
        joint_b = np.prod([probabilities_b[d, k] for d, k in enumerate(action)])
        total += abs(joint_a - joint_b)
    return total / 2.0


@pytest.mark.parametrize("action_dims,n_bins", [(1, 5), (2, 3), (3, 2)])
def test_categorical_tv_matches_enumeration(action_dims, n_bins):
    rng = np.random.default_rng(action_dims)
    logits_a = rng.normal(size=action_dims * n_bins)
    logits_b = logits_a + rng.normal(size=action_dims * n_bins)

    exact = certify.categorical_tv(jnp.asarray(logits_a), jnp.asarray(logits_b), n_bins=n_bins)

    assert float(exact) == pytest.approx(brute_force_joint_tv(logits_a, logits_b, n_bins), rel=1e-12)


def test_categorical_joint_between_max_and_sum_of_factors():
    rng = np.random.default_rng(5)
    logits_a = jnp.asarray(rng.normal(size=(1000, 9)))
    logits_b = logits_a + jnp.asarray(rng.normal(size=(1000, 9)))

    joint = certify.categorical_tv(logits_a, logits_b, n_bins=3)
    per_dim = certify.categorical_tv_per_dim(logits_a, logits_b, n_bins=3)

    assert per_dim.shape == (1000, 3)
    assert np.all(joint <= jnp.sum(per_dim, axis=-1) + 1e-12)
    assert np.all(joint >= jnp.max(per_dim, axis=-1) - 1e-12)


def test_categorical_tv_rejects_large_joint_space():
    logits = jnp.zeros(17 * 2)

    with pytest.raises(ValueError, match="MAX_JOINT_OUTCOMES"):
        certify.categorical_tv(logits, logits, n_bins=2)


def test_softmax_tv_within_logit_range_bound():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(20_000, 5)) * rng.uniform(0.1, 5.0, (20_000, 1))
    change = rng.normal(size=(20_000, 5)) * rng.uniform(0.01, 3.0, (20_000, 1))

    exact = certify.categorical_tv(jnp.asarray(logits), jnp.asarray(logits + change))
    range_bound = certify.logit_change_tv_bound(jnp.asarray(change), jnp.asarray(change))
    linf_bound = np.minimum(1.0, np.abs(change).max(axis=1) / 2.0)

    assert np.all(exact <= range_bound + 1e-12)
    assert np.all(range_bound <= linf_bound + 1e-12)


def test_categorical_tv_bound_caps_and_sums():
    assert float(certify.categorical_tv_bound(0.1, 2.0)) == pytest.approx(0.1)
    assert float(certify.categorical_tv_bound(0.1, 2.0, action_dims=3)) == pytest.approx(0.3)
    assert float(certify.categorical_tv_bound(1.0, 50.0)) == 1.0
    assert float(certify.categorical_tv_bound(0.1, 8.0, action_dims=3)) == 1.0
    per_dim = jnp.array([2.0, 4.0, 0.0])
    assert float(certify.categorical_tv_bound(0.1, per_dim, action_dims=None)) == pytest.approx(0.3)
    assert certify.categorical_tv_bound(jnp.array([0.1, 0.2]), 2.0).shape == (2,)


@pytest.mark.parametrize("tau", [1e-4, 0.05, 0.5, 0.99])
def test_certified_radius_inverts_tv_bound(tau):
    lipschitz = 3.7

    gaussian_radius = certify.certified_radius(lipschitz, tau)
    categorical_radius = certify.certified_radius(lipschitz, tau, kind="categorical", action_dims=2)

    assert float(certify.gaussian_tv_bound(gaussian_radius, lipschitz)) == pytest.approx(tau, rel=1e-9)
    assert float(certify.categorical_tv_bound(categorical_radius, lipschitz, action_dims=2)) == pytest.approx(tau)
    assert float(categorical_radius) == pytest.approx(2 * tau / (2 * lipschitz))


def test_certified_radius_infinite_cases():
    assert np.isinf(float(certify.certified_radius(0.0, 0.1)))
    assert np.isinf(float(certify.certified_radius(2.0, 1.0)))
    assert np.isinf(float(certify.certified_radius(0.0, 0.1, kind="categorical")))
    with pytest.raises(ValueError, match="Unsupported kind"):
        certify.certified_radius(1.0, 0.1, kind="beta")


def test_value_gap_factor_at_099():
    assert float(certify.value_gap_bound(1.0, 0.99, 1.0)) == pytest.approx(2 * (1 + 0.99 / 0.01**2), rel=1e-9)
    assert float(certify.value_gap_bound(0.01, 0.9, 2.0)) == pytest.approx(2 * (1 + 0.9 / 0.01) * 2.0 * 0.01)


@pytest.mark.parametrize("tv_max", [0.0, 1e-4, 0.001, 0.25, 1.0 / 3.0, 0.3, 1.0])
def test_finite_horizon_matches_explicit_sum(tv_max):
    horizon = 1000
    explicit = sum(2.0 * 1.5 * min(1.0, t * tv_max) for t in range(1, horizon + 1))

    closed_form = float(certify.finite_horizon_gap_bound(tv_max, horizon, 1.5))

    assert closed_form == pytest.approx(explicit, rel=1e-9, abs=1e-12)
    assert closed_form <= 2.0 * horizon * 1.5 + 1e-9


def test_finite_horizon_vmaps_over_tv():
    values = jax.vmap(lambda tv: certify.finite_horizon_gap_bound(tv, 100, 1.0))(jnp.array([0.0, 0.01, 0.5]))

    assert values.shape == (3,)
    assert float(values[0]) == 0.0
