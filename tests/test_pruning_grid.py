"""A grid that mixes schedules, methods and allocations: one program, each cell as if trained alone."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune import train as train_module
from robustprune.config import ConfigError
from robustprune.grid import cell_params, expand_cells
from robustprune.networks import mean_kernels
from robustprune.presets import get_preset
from robustprune.pruning import achieved_sparsity, critic_kernels, full_mask_tree, scheduled_sparsity

SCHEDULES = ("gradual", "micro", "one_shot", "post_training")


def mixed_config(**prune):
    cfg = get_preset("smoke")
    settings = {**dict(sparsities=(0.0, 0.6), schedules=SCHEDULES, methods=("magnitude", "random"),
                       allocations=("global", "erk"), micro_increment=0.2), **prune}
    return dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **settings), seeds=(0,)).validate()


@pytest.fixture(scope="module")
def mixed_grid():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        cfg = mixed_config(prune_critic=True)
        cells = expand_cells(cfg)
        params = cell_params(cfg, cells)
        before = train_module.TRACE_COUNT["train"]
        state, metrics = jax.jit(jax.vmap(functools.partial(train_module.train, cfg)))(params)
        traces = train_module.TRACE_COUNT["train"] - before
        single = jax.jit(functools.partial(train_module.train, cfg))
        picks = [1, 6, 11, 16]  # one cell per schedule, with different methods and allocations
        alone = {i: single(jax.tree_util.tree_map(lambda x: x[i], params)) for i in picks}
        yield cfg, cells, params, state, metrics, traces, alone
    finally:
        jax.config.update("jax_enable_x64", previous)


def test_grid_covers_every_combination_once(mixed_grid):
    cfg, cells, *_ = mixed_grid
    assert len(cells) == 1 + len(SCHEDULES) * 2 * 2
    assert cfg.num_cells == len(cells)
    combos = {(c.schedule, c.method, c.allocation) for c in cells if c.sparsity > 0}
    assert len(combos) == len(SCHEDULES) * 4
    assert [c.schedule for c in cells if c.sparsity == 0] == ["none"]


def test_mixed_grid_traces_once(mixed_grid):
    *_, traces, _ = mixed_grid
    assert traces == 1


def test_mixed_grid_cell_equals_cell_alone(mixed_grid):
    cfg, cells, _, state, metrics, _, alone = mixed_grid
    for i, (single_state, single_metrics) in alone.items():
        assert single_state.params["policy"]["params"]["log_std"].dtype == jnp.float64
        for a, b in zip(jax.tree_util.tree_leaves(single_state.params), jax.tree_util.tree_leaves(state.params)):
            np.testing.assert_allclose(a, b[i], rtol=1e-6, atol=1e-12)
        for a, b in zip(single_state.masks + single_state.critic_masks, state.masks + state.critic_masks):
            np.testing.assert_array_equal(a, b[i])
        for name in ("episode_return", "sparsity_achieved", "sparsity_target"):
            np.testing.assert_allclose(single_metrics[name], metrics[name][i], rtol=1e-6, atol=1e-12)


def test_trajectory_follows_schedule_without_regrowth(mixed_grid):
    cfg, cells, params, state, metrics, _, _ = mixed_grid
    n = sum(m.shape[1] * m.shape[2] for m in state.masks)
    for i, cell in enumerate(cells):
        schedule = jax.tree_util.tree_map(lambda x: x[i], params.schedule)
        expected = [float(scheduled_sparsity(schedule, t)) for t in range(cfg.ppo.num_updates)]
        np.testing.assert_allclose(metrics["sparsity_target"][i], expected, atol=1e-9)
        achieved = np.asarray(metrics["sparsity_achieved"][i])
        assert np.all(np.abs(achieved - np.asarray(expected)) * n <= 1.0)
        assert np.all(np.diff(achieved) >= 0)
    final = np.asarray(jax.vmap(achieved_sparsity)(state.masks))
    assert np.all(np.abs(final - np.asarray([c.sparsity for c in cells])) * n <= 1.0)


def test_post_training_masks_are_not_trained_under(mixed_grid):
    cfg, cells, _, _, metrics, _, _ = mixed_grid
    post = [i for i, c in enumerate(cells) if c.schedule == "post_training"]
    assert post
    for i in post:
        assert np.all(np.asarray(metrics["sparsity_achieved"][i][:-1]) == 0.0)
        assert float(metrics["sparsity_achieved"][i][-1]) > 0.5


def test_critic_pruned_with_own_masks(mixed_grid):
    cfg, cells, _, ts, _, _, _ = mixed_grid
    num_hidden = len(cfg.network.hidden_sizes)
    critic_masks = ts.critic_masks
    assert len(critic_masks) == num_hidden + 1
    n = sum(m.shape[1] * m.shape[2] for m in critic_masks)
    achieved = np.asarray(jax.vmap(achieved_sparsity)(critic_masks))
    assert np.all(np.abs(achieved - np.asarray([c.sparsity for c in cells])) * n <= 1.0)
    for kernel, mask in zip(critic_kernels(ts.params["critic"], num_hidden), critic_masks):
        assert np.all(np.asarray(kernel)[np.asarray(mask) == 0] == 0.0)
    for kernel, mask in zip(mean_kernels(ts.params["policy"], num_hidden), ts.masks):
        assert np.all(np.asarray(kernel)[np.asarray(mask) == 0] == 0.0)


def test_adam_moments_zero_at_pruned_policy_and_critic(mixed_grid):
    *_, ts, _, _, _ = mixed_grid
    mask_tree = jax.vmap(full_mask_tree)(ts.params, ts.masks, ts.critic_masks)
    adam = ts.opt_state[1]
    for moment in (adam.mu, adam.nu):
        for leaf, mask in zip(jax.tree_util.tree_leaves(moment), jax.tree_util.tree_leaves(mask_tree)):
            assert np.all(np.asarray(leaf)[np.asarray(mask) == 0] == 0.0)


# --- validation and grid expansion ---------------------------------------------------------------------------------

def test_unknown_schedule_named_in_error():
    with pytest.raises(ConfigError, match="prune.schedules"):
        mixed_config(schedules=("gradual", "micr"))


def test_micro_increment_too_small_is_rejected():
    with pytest.raises(ConfigError, match="prune.micro_increment"):
        mixed_config(micro_increment=0.01)


def test_disabled_pruning_needs_zero_targets():
    with pytest.raises(ConfigError, match="prune.enabled"):
        mixed_config(enabled=False)


def test_infeasible_cap_rejected_before_compile():
    cfg = mixed_config(sparsities=(0.0, 0.99), max_sparsity_first_last=0.0)
    with pytest.raises(ConfigError, match="prune.max_sparsity_first_last"):
        cell_params(cfg, expand_cells(cfg))


def test_capacity_cells_have_narrower_widths_and_own_program():
    cfg = mixed_config(capacity_control=True, schedules=("gradual",), methods=("magnitude",),
                       allocations=("global",))
    cells = expand_cells(cfg)
    control = [c for c in cells if c.capacity_of > 0]
    assert [c.capacity_of for c in control] == [0.6]
    assert control[0].sparsity == 0.0
    assert control[0].hidden_sizes[0] < cfg.network.hidden_sizes[0]
    with pytest.raises(ConfigError, match="capacity-control"):
        cell_params(cfg, cells)
