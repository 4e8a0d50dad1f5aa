"""Soundness of the Gaussian certificates: no bound may fall below what an attack or an exact formula attains.

The sweep draws random masked networks with two hidden layers (L = 3), states, radii and log-stds, batched
with vmap: 512 draws for each activation and input norm, 6,144 in all. `test_certify_soundness_categorical.py`
draws as many categorical policies. Everything runs in float64, and a bound counts as violated when the
attained value exceeds it by more than a relative 1e-9 (plus 1e-12 absolute).
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
GAUSSIAN_SIZES = (4, 6, 6, 2)
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
    """Draw DRAWS (network, log_std, state, radius, PGD key) cases as float64 arrays with a leading batch axis."""
    rng = np.random.default_rng(seed)
    kernels, biases = random_masked_mlps(rng, DRAWS, layer_sizes)
    case = {
        "kernels": kernels,
        "biases": biases,
        "x": 1.5 * rng.normal(size=(DRAWS, layer_sizes[0])),
        "eps": np.exp(rng.uniform(np.log(0.01), np.log(1.0), DRAWS)),
        # The "unsafe_rbg" generator compiles faster than the default threefry under vmap.
        "key": jax.random.split(jax.random.key(seed, impl="unsafe_rbg"), DRAWS),
        "log_std": rng.uniform(-1.5, 0.5, (DRAWS, layer_sizes[-1])),
    }
    return case


def gaussian_case(case, activation, norm):
    kernels, biases, log_std, x, eps = (case[name] for name in ("kernels", "biases", "log_std", "x", "eps"))
    apply_mean = functools.partial(certify.mlp_apply, kernels, biases, activation=activation)

    found_tv, x_hat = certify.pgd_max_tv(
        apply_mean, log_std, x, eps, case["key"], norm=norm, steps=PGD_STEPS, restarts=PGD_RESTARTS
    )
    lipschitz = certify.gaussian_lipschitz_bounds(kernels, log_std, activation=activation, norm=norm)
    certified = {name: certify.gaussian_tv_bound(eps, value) for name, value in lipschitz.items()}
    local = certify.local_gaussian_tv_bound(kernels, biases, log_std, x, eps, activation=activation, norm=norm)
    jacobian_norm = certify.local_jacobian_norm(apply_mean, x_hat, norm=norm, out_scale=jnp.exp(-log_std))
    return found_tv, certified, local, lipschitz, jacobian_norm


@functools.partial(jax.jit, static_argnames=("activation", "norm"), compiler_options=FAST_COMPILE)
def run_sweep(cases, *, activation, norm):
    return jax.vmap(lambda case: gaussian_case(case, activation, norm))(cases)


def sweep_seed(activation, norm):
    return 10 * ACTIVATIONS.index(activation) + certify.NORMS.index(norm)


@pytest.mark.parametrize("norm", certify.NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gaussian_bounds_cover_pgd(activation, norm):
    cases = draw_cases(sweep_seed(activation, norm), GAUSSIAN_SIZES)
    found, certified, local, lipschitz, jacobian_norm = run_sweep(cases, activation=activation, norm=norm)

    for name, bound in certified.items():
        assert count_violations(bound, found) == 0, f"{name} certified TV below the PGD TV"
    for name, bound in lipschitz.items():
        assert count_violations(bound, jacobian_norm) == 0, f"{name} below a local Jacobian norm"
    assert count_violations(local, found) == 0, "local IBP TV bound below the PGD TV"
    assert np.median(found) > 1e-3, "PGD found almost no TV, so the sweep would test nothing"


def linear_policy(seed, obs_dim=5):
    weight_key, bias_key = jax.random.split(jax.random.PRNGKey(seed))
    kernel = jax.random.normal(weight_key, (obs_dim, 1), jnp.float64)
    kernel = kernel.at[1, 0].set(0.0)
    bias = jax.random.normal(bias_key, (1,), jnp.float64)
    return [kernel], [bias], jnp.array([-0.3])


@pytest.mark.parametrize("norm", certify.NORMS)
def test_linear_policy_certified_equals_pgd(norm):
    kernels, biases, log_std = linear_policy(seed=7)
    x = jnp.linspace(-1.0, 1.0, 5)
    eps = 0.2
    weights = np.abs(np.asarray(kernels[0][:, 0])) * np.exp(0.3)
    exact_delta = eps * {"linf": weights.sum(), "l2": np.sqrt(np.sum(weights**2)), "l1": weights.max()}[norm]
    apply_mean = functools.partial(certify.mlp_apply, kernels, biases, activation="tanh")

    attack = jax.jit(lambda key: certify.pgd_max_tv(apply_mean, log_std, x, eps, key, norm=norm, steps=50))
    found, _ = attack(jax.random.PRNGKey(0))
    lipschitz = certify.gaussian_lipschitz_bounds(kernels, log_std, activation="tanh", norm=norm)
    certified = certify.gaussian_tv_bound(eps, lipschitz["abs_product"])

    assert abs(float(certified) - float(found)) <= 1e-5
    assert abs(float(certified) - float(certify.gaussian_tv(exact_delta))) <= 1e-12


def test_linear_policy_bounds_agree():
    kernels, _, log_std = linear_policy(seed=8)
    lipschitz = certify.gaussian_lipschitz_bounds(kernels, log_std, activation="relu", norm="linf")
    exact = float(jnp.sum(jnp.abs(kernels[0])) * jnp.exp(0.3))

    assert lipschitz["abs_product"] == pytest.approx(exact, rel=1e-12)
    assert lipschitz["linf_layer_product"] == pytest.approx(exact, rel=1e-12)
    assert lipschitz["signed_pair_product"] == pytest.approx(exact, rel=1e-12)


def test_sweep_detects_halved_bound():
    """A bound scaled down by 2 must fail on linear policies, so the comparison has power."""
    kernels, biases, log_std = linear_policy(seed=9)
    apply_mean = functools.partial(certify.mlp_apply, kernels, biases, activation="tanh")
    eps = 0.1
    attack = jax.jit(lambda key: certify.pgd_max_tv(apply_mean, log_std, jnp.zeros(5), eps, key))
    found, _ = attack(jax.random.PRNGKey(1))
    lipschitz = certify.gaussian_lipschitz_bounds(kernels, log_std, activation="tanh")

    assert count_violations(certify.gaussian_tv_bound(eps, 0.5 * lipschitz["abs_product"]), found) == 1


def single_network(seed):
    kernels, biases = random_masked_mlps(np.random.default_rng(seed), 1, GAUSSIAN_SIZES)
    return [jnp.asarray(kernel[0]) for kernel in kernels], [jnp.asarray(bias[0]) for bias in biases]


def test_raw_unit_ball_matches_folded_network():
    kernels, biases = single_network(3)
    log_std = jnp.zeros(GAUSSIAN_SIZES[-1])
    in_scale = jnp.array([0.5, 2.0, 1.0, 3.0])
    folded = [in_scale[:, None] * kernels[0], *kernels[1:]]

    raw = certify.gaussian_lipschitz_bounds(kernels, log_std, activation="elu", in_scale=in_scale)
    reference = certify.gaussian_lipschitz_bounds(folded, log_std, activation="elu")

    for name in raw:
        assert raw[name] == pytest.approx(float(reference[name]), rel=1e-12), name


def test_raw_unit_pgd_stays_under_bound():
    kernels, biases = single_network(4)
    log_std = jnp.array([-0.5, 0.2])
    in_scale = jnp.array([0.5, 2.0, 1.0, 3.0])
    x = jnp.array([0.1, -0.4, 0.3, 0.0])
    eps = 0.3
    apply_mean = functools.partial(certify.mlp_apply, kernels, biases, activation="silu")

    attack = jax.jit(lambda key: certify.pgd_max_tv(apply_mean, log_std, x, eps, key, in_scale=in_scale))
    found, x_hat = attack(jax.random.PRNGKey(5))
    lipschitz = certify.gaussian_lipschitz_bounds(kernels, log_std, activation="silu", in_scale=in_scale)
    local = certify.local_gaussian_tv_bound(kernels, biases, log_std, x, eps, activation="silu", in_scale=in_scale)

    assert float(jnp.max(jnp.abs((x_hat - x) / in_scale))) <= eps * (1 + RTOL)
    assert count_violations(local, found) == 0
    for name, value in lipschitz.items():
        assert count_violations(certify.gaussian_tv_bound(eps, value), found) == 0, name
