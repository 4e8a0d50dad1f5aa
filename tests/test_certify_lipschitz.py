"""Operator norms and global Lipschitz bounds: exact values, orderings, registry, folding and tracing."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune import certify
from robustprune.certify.testing import random_masked_mlps

ACTIVATIONS = ("tanh", "relu", "elu", "silu")
SIZES = (5, 7, 7, 3)
BATCH = 256

# Compilation dominates these tests, so XLA skips its backend optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def random_batch(seed, sizes=SIZES):
    kernels, _ = random_masked_mlps(np.random.default_rng(seed), BATCH, sizes)
    log_std = np.random.default_rng(seed + 1).uniform(-1.0, 0.5, (BATCH, sizes[-1]))
    return [jnp.asarray(kernel) for kernel in kernels], jnp.asarray(log_std)


@functools.partial(jax.jit, static_argnames=("activation", "norm", "n_bins"), compiler_options=FAST_COMPILE)
def batch_bounds(kernels, log_std, *, activation, norm, n_bins=None):
    def one(kernels, log_std):
        gaussian = certify.gaussian_lipschitz_bounds(kernels, log_std, activation=activation, norm=norm)
        categorical = certify.categorical_lipschitz_bounds(kernels, activation=activation, norm=norm, n_bins=n_bins)
        return gaussian, categorical

    return jax.vmap(one)(kernels, log_std)


def cube_vertices(size):
    return np.array(list(itertools.product((-1.0, 1.0), repeat=size)))


def test_operator_norm_linf_pairs_exact():
    kernel = np.random.default_rng(0).normal(size=(6, 4))
    images = cube_vertices(6) @ kernel

    assert float(certify.operator_norm(jnp.asarray(kernel), "linf", "linf")) == pytest.approx(np.abs(images).max())
    assert float(certify.operator_norm(jnp.asarray(np.abs(kernel)), "linf", "l2")) == pytest.approx(
        np.linalg.norm(cube_vertices(6) @ np.abs(kernel), axis=1).max()
    )


def test_operator_norm_linf_l2_bounds_vertices():
    kernel = np.random.default_rng(1).normal(size=(6, 4))
    vertex_max = np.linalg.norm(cube_vertices(6) @ kernel, axis=1).max()

    assert float(certify.operator_norm(jnp.asarray(kernel), "linf", "l2")) >= vertex_max


def test_operator_norm_l1_pairs_exact():
    kernel = np.random.default_rng(2).normal(size=(6, 4))
    images = np.concatenate([kernel, -kernel])  # images of the ℓ1 ball's vertices ±e_i

    assert float(certify.operator_norm(jnp.asarray(kernel), "l1", "l1")) == pytest.approx(np.abs(images).sum(1).max())
    assert float(certify.operator_norm(jnp.asarray(kernel), "l1", "l2")) == pytest.approx(
        np.linalg.norm(images, axis=1).max()
    )
    assert float(certify.operator_norm(jnp.asarray(kernel), "l1", "linf")) == pytest.approx(np.abs(images).max())


def test_operator_norm_l2_pairs_exact():
    kernel = np.random.default_rng(3).normal(size=(6, 4))

    assert float(certify.operator_norm(jnp.asarray(kernel), "l2", "l2")) == pytest.approx(np.linalg.norm(kernel, 2))
    assert float(certify.operator_norm(jnp.asarray(kernel), "l2", "linf")) == pytest.approx(
        np.linalg.norm(kernel, axis=0).max()
    )


def test_operator_norm_rejects_linf_to_l1():
    with pytest.raises(ValueError, match="Unsupported norm pair"):
        certify.operator_norm(jnp.ones((2, 2)), "linf", "l1")


def test_spectral_norm_rises_under_masking():
    dense = jnp.array([[1.0, 1.0], [1.0, -1.0]])
    masked = jnp.array([[1.0, 1.0], [1.0, 0.0]])

    assert float(certify.spectral_norm(dense)) == pytest.approx(np.sqrt(2.0), rel=1e-12)
    assert float(certify.spectral_norm(masked)) == pytest.approx((1.0 + np.sqrt(5.0)) / 2.0, rel=1e-12)


def test_spectral_product_bound_rises_under_masking():
    def spectral_bound(kernel):
        bounds = certify.gaussian_lipschitz_bounds([kernel], jnp.zeros(2), activation="tanh", norm="l2")
        return float(bounds["spectral_product"])

    assert spectral_bound(jnp.array([[1.0, 1.0], [1.0, -1.0]])) == pytest.approx(1.41421356, rel=1e-8)
    assert spectral_bound(jnp.array([[1.0, 1.0], [1.0, 0.0]])) == pytest.approx(1.61803399, rel=1e-8)


def test_abs_product_norm_of_signed_example():
    bounds = certify.gaussian_lipschitz_bounds(
        [jnp.array([[1.0, 1.0], [1.0, -1.0]])], jnp.zeros(2), activation="tanh", norm="l2"
    )

    assert float(bounds["abs_product"]) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_abs_product_within_layer_product(activation):
    kernels, log_std = random_batch(10)
    for norm, layer_bound in (("linf", "linf_layer_product"), ("l1", "l1_layer_product")):
        gaussian, categorical = batch_bounds(kernels, log_std, activation=activation, norm=norm)

        assert np.all(gaussian["abs_product"] <= gaussian[layer_bound] * (1 + 1e-12)), norm
        assert np.all(categorical["abs_product"] <= categorical[layer_bound] * (1 + 1e-12)), norm


@pytest.mark.parametrize("norm", certify.NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_signed_pair_within_abs_product(activation, norm):
    kernels, log_std = random_batch(11)
    gaussian, categorical = batch_bounds(kernels, log_std, activation=activation, norm=norm)

    assert np.all(gaussian["signed_pair_product"] <= gaussian["abs_product"] * (1 + 1e-12))
    assert np.all(categorical["signed_pair_product"] <= categorical["abs_product"] * (1 + 1e-12))


def test_signed_pair_tighter_for_monotone_activation():
    kernels, log_std = random_batch(12)
    gaussian, _ = batch_bounds(kernels, log_std, activation="tanh", norm="linf")

    assert np.mean(gaussian["signed_pair_product"] < 0.99 * gaussian["abs_product"]) > 0.5


@pytest.mark.parametrize("norm", certify.NORMS)
def test_frobenius_above_spectral(norm):
    kernels, log_std = random_batch(13)
    gaussian, categorical = batch_bounds(kernels, log_std, activation="silu", norm=norm)

    assert np.all(gaussian["spectral_product"] <= gaussian["frobenius_product"] * (1 + 1e-12))
    assert np.all(categorical["spectral_product"] <= categorical["frobenius_product"] * (1 + 1e-12))


def test_linf_layer_product_formula():
    kernels, log_std = random_batch(14)
    kernels = [kernel[0] for kernel in kernels]
    scaled_last = np.asarray(kernels[-1]) * np.exp(-np.asarray(log_std[0]))
    expected = np.linalg.norm(np.abs(scaled_last).sum(axis=0))
    for kernel in kernels[:-1]:
        expected *= np.abs(np.asarray(kernel)).sum(axis=0).max()

    bounds = certify.gaussian_lipschitz_bounds(kernels, log_std[0], activation="relu", norm="linf")

    assert float(bounds["linf_layer_product"]) == pytest.approx(expected, rel=1e-12)


def test_abs_product_formula():
    kernels, log_std = random_batch(15)
    kernels = [np.asarray(kernel[0]) for kernel in kernels]
    vector = np.ones(SIZES[0])
    for kernel in kernels[:-1]:
        vector = vector @ np.abs(kernel)
    vector = vector @ np.abs(kernels[-1] * np.exp(-np.asarray(log_std[0])))
    rho = certify.ACTIVATION_SLOPE["silu"]

    bounds = certify.gaussian_lipschitz_bounds(
        [jnp.asarray(kernel) for kernel in kernels], log_std[0], activation="silu", norm="linf"
    )

    assert float(bounds["abs_product"]) == pytest.approx(rho ** (len(kernels) - 1) * np.linalg.norm(vector), rel=1e-12)


def test_registry_fields():
    for name, bound in certify.BOUNDS.items():
        assert bound.name == name
        assert isinstance(bound.monotone, bool), name
        assert bound.description, name
        assert set(bound.norms) <= set(certify.NORMS), name
    assert not certify.BOUNDS["spectral_product"].monotone
    assert certify.BOUNDS["frobenius_product"].monotone
    assert certify.BOUNDS["abs_product"].monotone
    assert certify.BOUNDS["linf_layer_product"].monotone


def test_bound_names_per_norm():
    assert {"linf_layer_product", "abs_product", "spectral_product", "frobenius_product"} <= set(
        certify.bound_names("linf")
    )
    assert "linf_layer_product" not in certify.bound_names("l2")
    assert "l1_layer_product" in certify.bound_names("l1")
    assert certify.bound_names("linf", ["abs_product", "l1_layer_product"]) == ["abs_product"]


def test_invalid_arguments_raise():
    kernels = [jnp.ones((3, 4)), jnp.ones((4, 2))]
    with pytest.raises(ValueError, match="Unsupported norm"):
        certify.gaussian_lipschitz_bounds(kernels, jnp.zeros(2), activation="tanh", norm="l3")
    with pytest.raises(ValueError, match="Unsupported activation"):
        certify.gaussian_lipschitz_bounds(kernels, jnp.zeros(2), activation="gelu")
    with pytest.raises(ValueError, match="input size"):
        certify.gaussian_lipschitz_bounds([jnp.ones((3, 4)), jnp.ones((5, 2))], jnp.zeros(2), activation="tanh")
    with pytest.raises(ValueError, match="out_scale"):
        certify.gaussian_lipschitz_bounds(kernels, jnp.zeros(3), activation="tanh")
    with pytest.raises(ValueError, match="n_bins"):
        certify.categorical_lipschitz_bounds(kernels, activation="tanh", n_bins=3)
    with pytest.raises(ValueError, match="Unknown bound names"):
        certify.gaussian_lipschitz_bounds(kernels, jnp.zeros(2), activation="tanh", names=["power_iteration"])


def test_categorical_per_dimension_matches_sliced_network():
    kernels, _ = random_batch(16, sizes=(5, 7, 6))
    kernels = [kernel[0] for kernel in kernels]
    bounds = jax.jit(functools.partial(certify.categorical_lipschitz_bounds, activation="elu"), static_argnames="n_bins")
    per_dimension = bounds(kernels, n_bins=3)

    for dimension in range(2):
        sliced = [*kernels[:-1], kernels[-1][:, 3 * dimension : 3 * dimension + 3]]
        single = bounds(sliced)
        for name, value in single.items():
            assert float(per_dimension[name][dimension]) == pytest.approx(float(value), rel=1e-12), name


def test_bounds_trace_once_under_jit_and_vmap():
    traces = []

    @jax.jit
    def certified_tv(kernels, log_std, eps):
        traces.append(1)

        def per_cell(kernels, log_std):
            lipschitz = certify.gaussian_lipschitz_bounds(kernels, log_std, activation="silu")["abs_product"]
            return jax.vmap(lambda radius: certify.gaussian_tv_bound(radius, lipschitz))(eps)

        return jax.vmap(per_cell)(kernels, log_std)

    kernels, log_std = random_batch(17)
    eps = jnp.array([0.01, 0.05, 0.1])
    first = certified_tv(kernels, log_std, eps)
    certified_tv([2.0 * kernel for kernel in kernels], log_std, 2.0 * eps)
    single = certify.gaussian_lipschitz_bounds([kernel[5] for kernel in kernels], log_std[5], activation="silu")

    assert len(traces) == 1
    assert first.shape == (BATCH, 3)
    assert float(first[5, 1]) == pytest.approx(float(certify.gaussian_tv_bound(0.05, single["abs_product"])), rel=1e-12)
