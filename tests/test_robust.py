"""Robust-training baselines: the SA-PPO penalty, adversarial rollouts, the Lipschitz penalty and the grid axis."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune.attacks import ball_norm
from robustprune.cell_groups import network_groups
from robustprune.certify import gaussian_lipschitz_bounds
from robustprune.config import ConfigError, RobustConfig
from robustprune.grid import cell_params, expand_cells, train_grid
from robustprune.networks import apply_masks, mean_kernels
from robustprune.presets import get_preset
from robustprune.robust_grid import check_program_method, program_config
from robustprune.train import init_train_state, make_cell_params
from robustprune.train.ppo import collect
from robustprune.train.robust import (
    adversarial_collect,
    lipschitz_tv_surrogate,
    make_robust_params,
    sa_ppo_kl,
    training_eps,
)
from robustprune.train.state import make_networks


def robust_config(method="vanilla", policy="gaussian", **robust):
    cfg = get_preset("smoke")
    return dataclasses.replace(
        cfg, network=dataclasses.replace(cfg.network, policy=policy, n_bins=5),
        robust=dataclasses.replace(RobustConfig(), methods=(method,), **robust))


def trained_looking_params(cfg, seed=0, scale=3.0):
    """Policy parameters of a fixed network, scaled up so that it reacts to small perturbations."""
    policy, _ = make_networks(cfg, 1)
    params = policy.init(jax.random.PRNGKey(seed), jnp.zeros((1, 2)))
    return jax.tree_util.tree_map(lambda x: x * scale, params)


@pytest.mark.parametrize("policy", ["gaussian", "categorical"])
def test_sa_ppo_penalty_grows_from_zero(policy):
    cfg = robust_config("sa_ppo", policy)
    params = trained_looking_params(cfg)
    obs = jax.random.normal(jax.random.PRNGKey(1), (128, 2))
    penalty = jax.jit(lambda eps: jnp.mean(sa_ppo_kl(cfg, params, obs, eps, jax.random.PRNGKey(2), 1)))
    values = [float(penalty(eps)) for eps in (0.0, 0.05, 0.1, 0.2, 0.4)]
    assert values[0] <= 1e-7  # zero up to float32 rounding of the same network evaluated twice
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_sa_ppo_gradient_reduces_penalty():
    cfg = robust_config("sa_ppo")
    params = trained_looking_params(cfg)
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 2))
    grads = jax.grad(lambda p: jnp.mean(sa_ppo_kl(cfg, p, obs, 0.2, jax.random.PRNGKey(2), 1)))(params)
    norms = [float(jnp.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads["params"]["mean"])]
    assert max(norms) > 0.0
    stepped = jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads)
    before = float(jnp.mean(sa_ppo_kl(cfg, params, obs, 0.2, jax.random.PRNGKey(3), 1)))
    after = float(jnp.mean(sa_ppo_kl(cfg, stepped, obs, 0.2, jax.random.PRNGKey(3), 1)))
    assert after < before


def test_training_eps_ramps_from_zero_to_target():
    cfg = robust_config("sa_ppo", eps_start_frac=0.2, eps_end_frac=0.6)
    robust = make_robust_params(1.0, 0.3)
    n = cfg.ppo.num_updates
    eps = [float(training_eps(cfg, robust, jnp.asarray(u))) for u in range(n + 1)]
    assert eps[0] == 0.0
    assert eps[-1] == pytest.approx(0.3)
    assert all(b >= a for a, b in zip(eps, eps[1:]))
    assert float(training_eps(cfg, robust, jnp.asarray(0.4 * n))) == pytest.approx(0.15)


@pytest.mark.parametrize("policy", ["gaussian", "categorical"])
def test_lipschitz_penalty_bound_and_masks(policy):
    cfg = robust_config("lipschitz", policy)
    params = trained_looking_params(cfg)
    assert float(lipschitz_tv_surrogate(cfg, params, 0.0)) == 0.0
    value = float(lipschitz_tv_surrogate(cfg, params, 0.2))
    if policy == "gaussian":
        kernels = mean_kernels(params, 2)
        bound = gaussian_lipschitz_bounds(kernels, params["params"]["log_std"], activation="tanh",
                                          names=["abs_product"])["abs_product"]
        assert value == pytest.approx(0.1 * float(bound), rel=1e-5)
    masks = tuple((jax.random.uniform(jax.random.PRNGKey(i), k.shape) > 0.5).astype(k.dtype)
                  for i, k in enumerate(mean_kernels(params, 2)))
    assert float(lipschitz_tv_surrogate(cfg, apply_masks(params, masks), 0.2)) <= value * (1 + 1e-6)
    grads = jax.grad(lambda p: lipschitz_tv_surrogate(cfg, p, 0.2))(params)
    assert float(jnp.abs(grads["params"]["mean"]["dense_0"]["kernel"]).sum()) > 0.0


@pytest.mark.parametrize("attack", ["random", "mad"])
def test_adversarial_rollouts_keep_true_rewards(attack):
    cfg = robust_config("adversarial", rollout_attack=attack, eps_end_frac=0.0, train_eps=(0.3,))
    cell = make_cell_params(cfg, 0.0, 0, train_eps=0.3)
    ts = init_train_state(cfg, cell)
    # Warm the normalizer with real states so that normalized units are meaningful.
    ts = ts.replace(normalizer=ts.normalizer.update(jax.random.uniform(jax.random.PRNGKey(0), (256, 2), minval=-1, maxval=1)))
    _, traj, _ = jax.jit(lambda ts: adversarial_collect(cfg, cell.robust, ts, None))(ts)
    clean = ts.normalizer.normalize(traj.raw_obs)
    distance = np.asarray(ball_norm(traj.obs - clean, "linf"))
    assert distance.max() <= 0.3 + 1e-5
    assert distance.mean() > 0.05  # the policy saw perturbed observations
    # Point mass: the reward of step t is 1 − min(1, x²) at the true next position (auto-reset aside).
    next_x = np.asarray(traj.raw_obs[1:, :, 0])
    keep = np.asarray(traj.done[:-1]) == 0
    expected = 1.0 - np.minimum(1.0, next_x**2)
    np.testing.assert_allclose(np.asarray(traj.reward[:-1])[keep], expected[keep], rtol=1e-5, atol=1e-6)


def test_adversarial_rollouts_at_eps_zero():
    cfg = robust_config("adversarial", rollout_attack="random", eps_end_frac=0.0, train_eps=(0.0,))
    cell = make_cell_params(cfg, 0.0, 0, train_eps=0.0)
    ts = init_train_state(cfg, cell)
    _, traj, _ = jax.jit(lambda ts: adversarial_collect(cfg, cell.robust, ts, None))(ts)
    np.testing.assert_array_equal(np.asarray(traj.obs), np.asarray(ts.normalizer.normalize(traj.raw_obs)))
    _, plain, _ = jax.jit(lambda ts: collect(cfg, ts))(ts)
    assert plain.obs.shape == traj.obs.shape


def test_grid_crosses_methods_kappas_and_eps():
    cfg = robust_config("vanilla")
    cfg = dataclasses.replace(cfg, robust=dataclasses.replace(
        cfg.robust, methods=("vanilla", "sa_ppo", "adversarial", "lipschitz"), kappas=(0.1, 1.0), train_eps=(0.1,)))
    cells = expand_cells(cfg)
    base = len(cfg.prune.sparsities) * len(cfg.seeds)
    counts = {m: sum(c.robust_method == m for c in cells) for m in cfg.robust.methods}
    assert counts == {"vanilla": base, "sa_ppo": 2 * base, "adversarial": base, "lipschitz": 2 * base}
    assert [c.cell_id for c in cells] == list(range(len(cells)))
    groups = network_groups(cfg, cells)
    assert [g.robust.methods for g, _ in groups] == [("vanilla",), ("sa_ppo",), ("adversarial",), ("lipschitz",)]
    assert all(c.robust_method == g.robust.methods[0] for g, members in groups for c in members)
    with pytest.raises(ConfigError, match="robust method"):
        check_program_method(program_config(cfg, "vanilla"), cells)


def test_vanilla_only_grid_is_unchanged():
    cfg = robust_config("vanilla")
    cells = expand_cells(cfg)
    assert all(c.robust_method == "vanilla" and c.kappa == 0.0 and c.train_eps == 0.0 for c in cells)
    assert len(cells) == len(cfg.prune.sparsities) * len(cfg.seeds)


@pytest.mark.parametrize("bad, match", [
    (dict(methods=("sa-ppo",)), "robust.methods"),
    (dict(methods=()), "robust.methods"),
    (dict(kappas=(-1.0,)), "robust.kappas"),
    (dict(eps_start_frac=0.8, eps_end_frac=0.2), "robust.eps_end_frac"),
    (dict(rollout_attack="sa_rl"), "robust.rollout_attack"),
    (dict(lipschitz_bound="spectral_product"), "robust.lipschitz_bound"),
])
def test_bad_robust_settings_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        RobustConfig(**bad).validate()


def test_sa_ppo_batches_kappa_and_eps():
    """One SA-PPO program trains cells with different κ and ε; κ = 0 turns the penalty's effect off."""
    cfg = dataclasses.replace(robust_config("sa_ppo", eps_end_frac=0.0), seeds=(0,),
                              prune=dataclasses.replace(get_preset("smoke").prune, sparsities=(0.0,)))
    cells = [dataclasses.replace(c, robust_method="sa_ppo", kappa=k, train_eps=e)
             for c in expand_cells(cfg) for k, e in ((0.0, 0.2), (1.0, 0.0), (1.0, 0.2))]
    out = train_grid(cfg, cell_params(cfg, cells), progress=False)
    penalty = out.metrics["robust_penalty"]
    assert np.all(np.isfinite(penalty))
    assert np.all(penalty[1] == 0.0)  # ε = 0: no penalty
    assert np.all(penalty[2] > 0.0)
    # κ = 0 and κ = 1 at the same ε share the key stream, so they differ only through the penalty.
    a, b = (jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[i], out.state.params)) for i in (0, 2))
    assert any(not np.allclose(x, y) for x, y in zip(a, b))
