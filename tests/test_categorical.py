"""Categorical policies: the distribution head, training as a grid, attacks, certificates and CartPole."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune import certify_policy
from robustprune import train as train_module
from robustprune.attacks import ATTACKS, AttackSettings, Victim, ball_norm
from robustprune.cartpole import CartPole
from robustprune.certify import categorical_tv
from robustprune.config import ConfigError, EvalConfig, NetworkConfig, StudyConfig
from robustprune.envs import Normalizer, available_envs
from robustprune.grid import cell_params, expand_cells
from robustprune.networks import Critic, apply_masks, dense_masks
from robustprune.policies import CategoricalPolicy, PolicyHead
from robustprune.presets import get_preset
from robustprune.train import init_train_state, stack_cells, train_update

HEAD = PolicyHead("categorical", action_size=2, n_bins=5)


def random_logits(key, batch=64, scale=2.0):
    return scale * jax.random.normal(key, (batch, HEAD.action_size * HEAD.n_bins))


def test_log_prob_normalized():
    logits = random_logits(jax.random.PRNGKey(0), batch=3)
    bins = np.asarray(HEAD.bins())
    actions = jnp.asarray([[a, b] for a in bins for b in bins])  # all 25 joint actions
    probs = jnp.exp(jax.vmap(lambda a: HEAD.log_prob(logits, jnp.broadcast_to(a, (3, 2))))(actions))
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, rtol=1e-5)


def test_samples_and_mode_are_bin_values():
    logits = random_logits(jax.random.PRNGKey(1))
    sample = HEAD.sample(logits, jax.random.PRNGKey(2))
    mode = HEAD.mode(logits)
    grid = np.asarray(HEAD.bins())
    assert np.all(np.isin(np.asarray(sample), grid))
    expected = grid[np.argmax(np.asarray(logits).reshape(-1, 2, 5), axis=-1)]
    np.testing.assert_array_equal(np.asarray(mode), expected)


def test_sample_frequencies_match_probabilities():
    logits = jnp.broadcast_to(random_logits(jax.random.PRNGKey(3), batch=1), (20000, 10))
    sample = np.asarray(HEAD.sample(logits, jax.random.PRNGKey(4)))
    probs = np.asarray(jax.nn.softmax(logits[0].reshape(2, 5), axis=-1))
    for d in range(2):
        freq = np.asarray([(sample[:, d] == v).mean() for v in np.asarray(HEAD.bins())])
        np.testing.assert_allclose(freq, probs[d], atol=0.02)


def test_kl_and_tv_properties():
    k1, k2 = jax.random.split(jax.random.PRNGKey(5))
    p, q = random_logits(k1), random_logits(k2)
    kl, tv = np.asarray(HEAD.kl(p, q)), np.asarray(HEAD.tv(p, q))
    assert np.all(kl >= -1e-6)
    np.testing.assert_allclose(np.asarray(HEAD.kl(p, p)), 0.0, atol=1e-6)
    np.testing.assert_allclose(tv, np.asarray(categorical_tv(p, q, n_bins=5)), rtol=1e-6)
    assert np.all(tv <= np.sqrt(0.5 * kl) + 1e-5)  # Pinsker's inequality


def test_expected_action_matches_probabilities():
    logits = random_logits(jax.random.PRNGKey(6), batch=4)
    probs = np.asarray(jax.nn.softmax(logits.reshape(4, 2, 5), axis=-1))
    np.testing.assert_allclose(np.asarray(HEAD.mean(logits)), probs @ np.asarray(HEAD.bins()), rtol=1e-5)


def test_bad_policy_settings_rejected():
    with pytest.raises(ConfigError, match="network.policy"):
        NetworkConfig(policy="beta").validate()
    with pytest.raises(ConfigError, match="network.n_bins"):
        NetworkConfig(policy="categorical", n_bins=1).validate()


def test_cartpole_physics():
    assert "cartpole" in available_envs()
    env = CartPole()
    state = env.reset(jax.random.PRNGKey(0))
    upright = state.replace(obs=jnp.zeros(4))
    still = env.step(upright, jnp.zeros(1))
    np.testing.assert_allclose(np.asarray(still.obs), 0.0, atol=1e-7)
    tilted = env.step(upright.replace(obs=jnp.asarray([0.0, 0.0, 0.1, 0.0])), jnp.zeros(1))
    tilted = env.step(tilted, jnp.zeros(1))
    assert float(tilted.obs[3]) > 0.0  # the pole falls further towards its tilt
    pushed = env.step(upright, jnp.ones(1))
    assert float(pushed.obs[1]) > 0.0  # a push to the right accelerates the cart to the right
    assert float(pushed.obs[3]) < 0.0  # and tips the pole to the left
    fallen = env.step(upright.replace(obs=jnp.asarray([0.0, 0.0, 0.3, 0.0])), jnp.zeros(1))
    assert float(fallen.done) == 1.0
    assert float(still.done) == 0.0


# ---- networks, victims, attacks and certificates ------------------------------------------------------

OBS = 3


def categorical_cfg(**network):
    return StudyConfig(network=NetworkConfig(hidden_sizes=(16, 16), policy="categorical", n_bins=5, **network),
                       eval=EvalConfig(eps=(0.0, 0.1, 0.3)))


def make_categorical_victim(seed, sparsity=0.5, scale=3.0, dtype=jnp.float64):
    policy, critic = CategoricalPolicy(2, 5, (16, 16), "tanh"), Critic((16, 16), "tanh")
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    dummy = jnp.zeros((1, OBS), dtype)
    params = policy.init(k1, dummy)
    params = jax.tree_util.tree_map(lambda x: (scale * x).astype(dtype), params)  # large logits: a peaked policy
    masks = tuple((jax.random.uniform(jax.random.fold_in(k3, i), m.shape) > sparsity).astype(dtype)
                  for i, m in enumerate(dense_masks(params, 2)))
    return Victim(policy_params=apply_masks(params, masks), critic_params=critic.init(k2, dummy),
                  normalizer=Normalizer.create(OBS), policy_apply=policy.apply, critic_apply=critic.apply,
                  head=PolicyHead("categorical", 2, 5))


@pytest.fixture
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_categorical_certificates_sound(x64):
    """PGD-found joint TV never exceeds the global or the local (IBP) certified TV, on random nets and states."""
    from robustprune.networks import mean_biases, mean_kernels

    cfg = categorical_cfg()
    checked = 0
    for seed in range(6):
        victim = make_categorical_victim(seed, sparsity=0.3 * (seed % 3))
        kernels, biases = mean_kernels(victim.policy_params, 2), mean_biases(victim.policy_params, 2)
        bounds = certify_policy.global_bounds(cfg, kernels, None, None)
        states = jax.random.normal(jax.random.PRNGKey(100 + seed), (4, OBS)) * 2.0
        for eps in (0.05, 0.3, 1.0):
            tv_pgd = jax.vmap(lambda x, k: certify_policy.pgd_tv(cfg, victim, x, eps, k, None))(
                states, jax.random.split(jax.random.PRNGKey(seed), 4))
            tv_ibp = jax.vmap(lambda x: certify_policy.local_tv_bound(cfg, kernels, biases, None, x, eps, None))(states)
            assert np.all(np.asarray(tv_pgd) <= np.asarray(tv_ibp) + 1e-9)
            for name, values in bounds.items():
                tv_global = certify_policy.global_tv_bound(cfg, eps, values)
                assert np.all(np.asarray(tv_pgd) <= tv_global + 1e-9), name
            checked += int(np.max(tv_pgd) > 1e-3)
            jac = jax.vmap(lambda x: certify_policy.jacobian_norm(cfg, victim, x, None))(states)
            for name, values in bounds.items():
                assert np.all(np.asarray(jac) <= certify_policy.scalar_lipschitz(cfg, values) * (1 + 1e-9)), name
    assert checked > 0  # the attacks moved the policy, so the comparisons were not all trivial


def test_categorical_radius_certifies_tau(x64):
    cfg = categorical_cfg()
    victim = make_categorical_victim(0)
    from robustprune.networks import mean_kernels

    bounds = certify_policy.global_bounds(cfg, mean_kernels(victim.policy_params, 2), None, None)
    for values in bounds.values():
        radius = float(certify_policy.radius(cfg, values, 0.1))
        assert float(certify_policy.global_tv_bound(cfg, radius, values)) <= 0.1 + 1e-9


SETTINGS = AttackSettings(pgd_steps=10, pgd_step_frac=0.25)


@pytest.mark.parametrize("attack", ["random", "critic", "mad"])
def test_categorical_attacks_stay_in_ball(attack):
    victim = make_categorical_victim(1, dtype=jnp.float32)
    obs = jax.random.normal(jax.random.PRNGKey(8), (32, OBS))
    perturbed = ATTACKS[attack](victim, obs, jax.random.PRNGKey(9), 0.2, SETTINGS)
    assert float(jnp.max(ball_norm(perturbed - obs, "linf"))) <= 0.2 + 1e-5


def test_mad_beats_random_categorical_kl():
    victim = make_categorical_victim(2, dtype=jnp.float32)
    obs = jax.random.normal(jax.random.PRNGKey(10), (64, OBS))
    clean = victim.dist_params(obs)
    mad = ATTACKS["mad"](victim, obs, jax.random.PRNGKey(11), 0.3, SETTINGS)
    noise = ATTACKS["random"](victim, obs, jax.random.PRNGKey(11), 0.3, SETTINGS)
    assert float(jnp.mean(victim.kl_to(clean, mad))) > float(jnp.mean(victim.kl_to(clean, noise)))


def test_victim_acts_with_argmax_bins():
    victim = make_categorical_victim(3, dtype=jnp.float32)
    obs = jax.random.normal(jax.random.PRNGKey(12), (16, OBS))
    logits = np.asarray(victim.dist_params(obs)).reshape(16, 2, 5)
    expected = np.linspace(-1, 1, 5)[np.argmax(logits, axis=-1)]
    np.testing.assert_allclose(np.asarray(victim.action(obs)), expected, atol=1e-6)


# ---- training ---------------------------------------------------------------------------------------


def tiny_categorical_config():
    cfg = get_preset("smoke")
    return dataclasses.replace(
        cfg, network=dataclasses.replace(cfg.network, policy="categorical", n_bins=5),
        prune=dataclasses.replace(cfg.prune, sparsities=(0.0, 0.5)), seeds=(0, 1))


def test_categorical_grid_matches_single_cell(x64):
    """Training a batch of cells equals training each alone, in float64 rollouts.

    NOTE: each cell's initial state is built outside vmap. Under x64, jit(vmap(init)) of the categorical
    policy (a batched LAPACK QR for the orthogonal init of its [64, 5] output kernel) was seen to deadlock in
    jaxlib 0.10.2 on this 2-core CPU; the training updates themselves are batched as in `train`.
    """
    cfg = tiny_categorical_config()
    cells = cell_params(cfg, expand_cells(cfg))
    count = cells.key.shape[0]
    take = lambda tree, i: jax.tree_util.tree_map(lambda x: x[i], tree)  # noqa: E731
    states = [jax.device_get(jax.jit(functools.partial(init_train_state, cfg))(take(cells, i))) for i in range(count)]
    run = lambda cell, ts: jax.lax.scan(functools.partial(train_update, cfg, cell), ts, None,  # noqa: E731
                                        cfg.ppo.num_updates)
    grid_state, grid_metrics = jax.device_get(jax.jit(jax.vmap(run))(cells, stack_cells(states)))
    run_single = jax.jit(run)
    for i in (0, 3):
        state, metrics = jax.device_get(run_single(take(cells, i), states[i]))
        assert metrics["episode_return"].dtype == jnp.float64  # the rollouts ran in float64
        assert "log_std" not in state.params["policy"]["params"]
        for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(grid_state.params)):
            # Flax stores kernels in float32 (its default param_dtype) even under x64, hence the absolute slack.
            np.testing.assert_allclose(a, b[i], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(metrics["episode_return"], grid_metrics["episode_return"][i], rtol=1e-6)
    assert float(grid_metrics["sparsity_achieved"][3, -1]) == pytest.approx(0.5, abs=0.01)
