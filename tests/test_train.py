"""PPO grid training: batching equivalence, one trace, and exact zeros at pruned weights."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune import train as train_module
from robustprune.grid import cell_params, expand_cells, train_grid
from robustprune.networks import mean_kernels
from robustprune.presets import get_preset
from robustprune.pruning import achieved_sparsity, full_mask_tree


def tiny_config():
    cfg = get_preset("smoke")
    return dataclasses.replace(
        cfg, prune=dataclasses.replace(cfg.prune, sparsities=(0.0, 0.3, 0.9)), seeds=(0, 1)
    )


@pytest.fixture
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_grid_cell_matches_single_cell(x64):
    cfg = tiny_config()
    cells = cell_params(cfg, expand_cells(cfg))
    grid_state, grid_metrics = jax.jit(jax.vmap(functools.partial(train_module.train, cfg)))(cells)

    train_single = jax.jit(functools.partial(train_module.train, cfg))
    for i in (0, 3, 5):
        single = jax.tree_util.tree_map(lambda x: x[i], cells)
        state, metrics = train_single(single)
        assert state.params["policy"]["params"]["log_std"].dtype == jnp.float64
        for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(grid_state.params)):
            np.testing.assert_allclose(a, b[i], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(metrics["episode_return"], grid_metrics["episode_return"][i], rtol=1e-6)


def test_grid_compiles_train_once():
    cfg = tiny_config()
    cells = cell_params(cfg, expand_cells(cfg))
    before = train_module.TRACE_COUNT["train"]
    jax.jit(jax.vmap(functools.partial(train_module.train, cfg))).lower(cells)
    assert train_module.TRACE_COUNT["train"] == before + 1


@pytest.fixture(scope="module")
def trained_grid():
    cfg = tiny_config()
    cells = cell_params(cfg, expand_cells(cfg))
    return cfg, train_grid(cfg, cells, progress=False)


def test_pruned_weights_stay_zero(trained_grid):
    cfg, out = trained_grid
    num_hidden = len(cfg.network.hidden_sizes)
    kernels = mean_kernels(out.state.params["policy"], num_hidden)
    for kernel, mask in zip(kernels, out.state.masks):
        pruned = np.asarray(mask) == 0
        assert pruned.any()
        assert np.all(np.asarray(kernel)[pruned] == 0.0)


def test_adam_moments_zero_at_pruned(trained_grid):
    _, out = trained_grid
    ts = out.state
    mask_tree = jax.vmap(full_mask_tree)(ts.params, ts.masks)
    adam_state = ts.opt_state[1]
    for moment in (adam_state.mu, adam_state.nu):
        for leaf, mask in zip(jax.tree_util.tree_leaves(moment), jax.tree_util.tree_leaves(mask_tree)):
            assert np.all(np.asarray(leaf)[np.asarray(mask) == 0] == 0.0)


def test_achieved_sparsity_within_one_weight(trained_grid):
    cfg, out = trained_grid
    achieved = np.asarray(jax.vmap(achieved_sparsity)(out.state.masks))
    num_weights = sum(m.shape[1] * m.shape[2] for m in out.state.masks)
    targets = np.asarray([c.sparsity for c in expand_cells(cfg)])
    assert np.all(np.abs(achieved - targets) * num_weights <= 1.0)


def test_segments_equal_one_scan(trained_grid):
    cfg, out = trained_grid
    cells = cell_params(cfg, expand_cells(cfg))
    state, metrics = jax.jit(jax.vmap(functools.partial(train_module.train, cfg)))(cells)
    np.testing.assert_allclose(metrics["episode_return"], out.metrics["episode_return"], rtol=1e-5)


def test_entropy_bonus_shifts_loss_and_gradient():
    """The loss with entropy_coef c is the plain loss minus c · H(π), so its log-std gradient is lower by c."""
    from robustprune.train.ppo import Transition, ppo_loss
    from robustprune.train.state import init_train_state

    cfg = get_preset("smoke")
    with_bonus = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, entropy_coef=0.05))
    cell = cell_params(cfg, expand_cells(cfg)[:1])
    params = init_train_state(cfg, jax.tree_util.tree_map(lambda x: x[0], cell)).params
    n, obs_size, act_size = 8, 2, params["policy"]["params"]["log_std"].shape[0]
    key = jax.random.PRNGKey(3)
    traj = Transition(obs=jax.random.normal(key, (n, obs_size)), raw_obs=jnp.zeros((n, obs_size)),
                      action=jax.random.normal(jax.random.fold_in(key, 1), (n, act_size)),
                      log_prob=jnp.full((n,), -2.0), value=jnp.zeros(n), reward=jnp.zeros(n), done=jnp.zeros(n),
                      truncation=jnp.zeros(n))
    batch = (traj, jnp.linspace(-1.0, 1.0, n), jnp.ones(n))

    plain, info = ppo_loss(cfg, params, batch)
    bonus, _ = ppo_loss(with_bonus, params, batch)
    log_std = params["policy"]["params"]["log_std"]
    entropy = float(jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)))
    np.testing.assert_allclose(float(info["entropy"]), entropy, rtol=1e-5)
    np.testing.assert_allclose(float(bonus), float(plain) - 0.05 * entropy, rtol=1e-5)

    def log_std_grad(config):
        grads = jax.grad(lambda p: ppo_loss(config, p, batch)[0])(params)
        return np.asarray(grads["policy"]["params"]["log_std"])

    np.testing.assert_allclose(log_std_grad(with_bonus), log_std_grad(cfg) - 0.05, atol=1e-5)
