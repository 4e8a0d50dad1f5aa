"""Soundness of the categorical certificates: no bound may fall below the TV that an attack attains.

The sweep draws random masked networks with one hidden layer and 2 action dimensions × 3 bins, states and
radii, batched with vmap: 512 draws for each activation and input norm, 6,144 in all. Everything runs in
float64, and a bound counts as violated when the attained value exceeds it by more than a relative 1e-9
(plus 1e-12 absolute).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune import certify
from robustprune.certify.testing import random_masked_mlps

ACTIVATIONS = ("tanh", "relu", "elu", "silu")
DRAWS = 512
CATEGORICAL_SIZES = (4, 6, 6)
N_BINS = 3
PGD_STEPS = 30
PGD_RESTARTS = 3
RTOL = 1e-9
ATOL = 1e-12

# Compilation dominates these tests, so XLA skips its backend optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def count_violations(bound, attained):
    bound = np.asarray(bound)
    attained = np.asarray(attained)
    return int(np.sum(attained > bound * (1.0 + RTOL) + ATOL))


def draw_cases(seed, layer_sizes):
    """Draw DRAWS (network, state, radius, PGD key) cases as float64 arrays with a leading batch axis."""
    rng = np.random.default_rng(seed)
    kernels, biases = random_masked_mlps(rng, DRAWS, layer_sizes)
    case = {
        "kernels": kernels,
        "biases": biases,
        "x": 1.5 * rng.normal(size=(DRAWS, layer_sizes[0])),
        "eps": np.exp(rng.uniform(np.log(0.01), np.log(1.0), DRAWS)),
        # The "unsafe_rbg" generator compiles faster than the default threefry under vmap.
        "key": jax.random.split(jax.random.key(seed, impl="unsafe_rbg"), DRAWS),
    }
    return case


def categorical_case(case, activation, norm):
    kernels, biases, x, eps = (case[name] for name in ("kernels", "biases", "x", "eps"))
    apply_logits = functools.partial(certify.mlp_apply, kernels, biases, activation=activation)

    found_tv, x_hat = certify.pgd_max_categorical_tv(
        apply_logits, x, eps, case["key"], n_bins=N_BINS, norm=norm, steps=PGD_STEPS, restarts=PGD_RESTARTS
    )
    found_per_dim = certify.categorical_tv_per_dim(apply_logits(x_hat), apply_logits(x), n_bins=N_BINS)
    lipschitz = certify.categorical_lipschitz_bounds(kernels, activation=activation, norm=norm, n_bins=N_BINS)
    certified = {name: certify.categorical_tv_bound(eps, value, action_dims=None) for name, value in lipschitz.items()}
    certified_per_dim = {name: jnp.minimum(1.0, 0.5 * eps * value) for name, value in lipschitz.items()}
    local = certify.local_categorical_tv_bound(
        kernels, biases, x, eps, activation=activation, norm=norm, n_bins=N_BINS
    )

    def dimension_jacobian_norm(dimension):
        def logits_of_dimension(point):
            return apply_logits(point).reshape(-1, N_BINS)[dimension]

        return certify.local_jacobian_norm(logits_of_dimension, x_hat, norm=norm, out_norm="linf")

    jacobian_norms = jnp.stack([dimension_jacobian_norm(d) for d in range(CATEGORICAL_SIZES[-1] // N_BINS)])
    return (found_tv, found_per_dim), (certified, certified_per_dim), local, lipschitz, jacobian_norms


@functools.partial(jax.jit, static_argnames=("activation", "norm"), compiler_options=FAST_COMPILE)
def run_sweep(cases, *, activation, norm):
    return jax.vmap(lambda case: categorical_case(case, activation, norm))(cases)


def sweep_seed(activation, norm):
    return 100 + 10 * ACTIVATIONS.index(activation) + certify.NORMS.index(norm)


@pytest.mark.parametrize("norm", certify.NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_categorical_bounds_cover_pgd(activation, norm):
    cases = draw_cases(sweep_seed(activation, norm), CATEGORICAL_SIZES)
    (found, found_per_dim), (certified, certified_per_dim), local, lipschitz, jacobian_norms = run_sweep(
        cases, activation=activation, norm=norm
    )

    for name, bound in certified.items():
        assert count_violations(bound, found) == 0, f"{name} certified joint TV below the PGD TV"
    for name, bound in certified_per_dim.items():
        assert count_violations(bound, found_per_dim) == 0, f"{name} per-dimension TV below the PGD TV"
    for name, bound in lipschitz.items():
        assert count_violations(bound, jacobian_norms) == 0, f"{name} below a local Jacobian norm"
    assert count_violations(local, found) == 0, "local IBP TV bound below the PGD TV"
    assert np.median(found) > 1e-3, "PGD found almost no TV, so the sweep would test nothing"
