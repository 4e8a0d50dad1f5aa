"""Learned attacks: Robust Sarsa fits a known Q, a trained SA-RL adversary beats random noise, and the
worst-case rows of the evaluations table."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from robustprune.attack_eval import with_worst_case
from robustprune.attacks import AttackSettings, Victim
from robustprune.attacks.learned import fit_adversaries
from robustprune.attacks.sarsa import fit_sarsa, q_network
from robustprune.config import AttackConfig, EvalConfig
from robustprune.envs import Normalizer
from robustprune.evaluate import evaluate_grid, evaluate_members
from robustprune.networks import Critic, GaussianPolicy
from robustprune.presets import get_preset

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from brax.envs import base as brax_base
    from brax.envs.wrappers import training as brax_wrappers


class ActionReward(brax_base.Env):
    """Observation: uniform noise. Reward 1 + a. Never terminates. Q^π(s, a) = 1 + a + γ/(1 − γ) for E[a'] = 0."""

    def reset(self, rng):
        zero = jnp.zeros(())
        return brax_base.State(None, jax.random.uniform(rng, (2,)), zero, zero, {}, {"rng": rng})

    def step(self, state, action):
        rng, key = jax.random.split(state.info["rng"])
        return state.replace(obs=jax.random.uniform(key, (2,)), reward=1.0 + action[0],
                             info={**state.info, "rng": rng})

    @property
    def observation_size(self):
        return 2

    @property
    def action_size(self):
        return 1

    @property
    def backend(self):
        return "jax"


def unit_normalizer(n):
    return Normalizer(mean=jnp.zeros(n), m2=jnp.ones(n), count=jnp.ones(()))


def linear_policy_victim(gains, log_std=-1.0):
    """A victim with μ(x) = gains·x (one action) built with the relu identity trick."""
    n = gains.shape[0]
    policy = GaussianPolicy(1, (n,), "relu", log_std)
    identity = {"kernel": jnp.eye(n), "bias": jnp.full(n, 100.0)}
    out = {"kernel": gains[:, None], "bias": jnp.asarray([-100.0 * gains.sum()])}
    params = {"params": {"mean": {"dense_0": identity, "out": out}, "log_std": jnp.full(1, log_std)}}
    critic = Critic((4,), "tanh")
    return Victim(params, critic.init(jax.random.PRNGKey(1), jnp.zeros((1, n))), unit_normalizer(n),
                  policy.apply, critic.apply)


def test_robust_sarsa_fits_known_q():
    env = brax_wrappers.AutoResetWrapper(brax_wrappers.VmapWrapper(brax_wrappers.EpisodeWrapper(ActionReward(), 20, 1)))
    victim = linear_policy_victim(jnp.zeros(2), log_std=-1.0)  # μ = 0: E[a] = 0 (symmetric clip)
    gamma = 0.5
    settings = AttackSettings(hidden_sizes=(32,), activation="tanh")
    params, td = jax.jit(lambda k: fit_sarsa(
        env, victim, k, jnp.asarray([0.01]), jnp.asarray([0.1]), settings=settings, gamma=gamma, reward_scale=1.0,
        num_envs=32, unroll_length=65, epochs=60, num_minibatches=8, learning_rate=3e-3, penalty_steps=1))(
        jax.random.PRNGKey(0))
    q = q_network(settings)
    member = jax.tree_util.tree_map(lambda x: x[0], params)
    obs = jax.random.uniform(jax.random.PRNGKey(2), (3, 2))
    for a in (-0.4, 0.0, 0.4):
        values = q.apply(member, obs, jnp.full((3, 1), a))
        np.testing.assert_allclose(values, 1.0 + a + gamma / (1.0 - gamma), atol=0.1)
    assert float(td[0]) < 0.1


@pytest.fixture(scope="module")
def point_mass_setup():
    cfg = get_preset("smoke")
    cfg = dataclasses.replace(
        cfg,
        eval=dataclasses.replace(cfg.eval, episodes=16, episode_length=50, eps=(0.5,)),
        attack=AttackConfig(adv_num_envs=32, adv_unroll_length=25, adv_num_updates=40, adv_learning_rates=(3e-3,)),
    )
    victims = jax.tree_util.tree_map(lambda x: x[None], linear_policy_victim(jnp.asarray([-1.5, -2.0])))
    return cfg, victims, jnp.asarray(cfg.eval.eps)


def test_sarl_adversary_beats_random(point_mass_setup):
    cfg, victims, eps = point_mass_setup
    key = jax.random.PRNGKey(3)
    clean = evaluate_grid(cfg, "none", victims, eps * 0.0, key).returns.mean()
    random = evaluate_grid(cfg, "random", victims, eps, key).returns.mean()
    adversaries, info = fit_adversaries(cfg, "sa_rl", victims, eps, jax.random.PRNGKey(4), progress=False)
    result, best = evaluate_members(cfg, "sa_rl", victims, eps, key, adversaries)
    learned = result.returns.mean()
    assert best.shape == (1, 1)
    assert float(jnp.max(result.violation)) <= 1e-5
    assert float(learned) < float(random)
    assert float(learned) < 0.8 * float(clean)


def test_worst_case_rows():
    rows = []
    for cell in (0, 1):
        for eps, returns in ((0.0, {"random": 10.0, "mad": 10.0}), (0.1, {"random": 8.0, "mad": 5.0, "sa_rl": 6.0})):
            for attack, value in returns.items():
                rows.append({"cell_id": cell, "attack": attack, "eps": eps, "return_mean": value + cell})
    rows.append({"cell_id": 0, "attack": "none", "eps": 0.0, "return_mean": 1.0})
    table = with_worst_case(pd.DataFrame(rows))
    worst = table[table.attack == "worst"].set_index(["cell_id", "eps"])
    assert len(worst) == 4
    assert worst.loc[(1, 0.1), "return_mean"] == 6.0
    assert worst.loc[(1, 0.1), "worst_attack"] == "mad"
    assert worst.loc[(0, 0.0), "return_mean"] == 10.0  # "none" never counts
    assert (table[table.attack != "worst"].worst_attack == "").all()


def test_eval_config_rejects_unknown_attack():
    from robustprune.config import ConfigError

    with pytest.raises(ConfigError, match="eval.attacks"):
        EvalConfig(attacks=("sarl",)).validate()
    with pytest.raises(ConfigError, match="attack.threat_model"):
        AttackConfig(threat_model="raw").validate()


def test_collect_under_attack_stays_in_ball():
    from robustprune.attacks import ball_norm
    from robustprune.attacks.training import collect_under_attack
    from robustprune.train import init_train_state, make_cell_params

    cfg = get_preset("smoke")
    ts = init_train_state(cfg, make_cell_params(cfg, 0.0, 0))
    ts = ts.replace(normalizer=unit_normalizer(2))
    _, traj, _ = jax.jit(lambda t: collect_under_attack(cfg, t, "mad", jnp.asarray(0.2)))(ts)
    distance = ball_norm(traj.obs - ts.normalizer.normalize(traj.raw_obs), cfg.eval.norm)
    assert float(jnp.max(distance)) <= 0.2 + 1e-5
    assert float(jnp.max(distance)) > 0.1  # the policy really saw perturbed observations


def test_adversaries_train_at_positive_eps():
    from robustprune.attack_eval import nonzero_eps_index

    trained, position = nonzero_eps_index(jnp.asarray([0.0, 0.1, 0.0, 0.3]))
    np.testing.assert_allclose(trained, [0.1, 0.3], rtol=1e-6)
    # Each positive ε maps to its own adversary. A zero ball may reuse any, since it admits no perturbation.
    np.testing.assert_allclose(np.asarray(trained)[position][[1, 3]], [0.1, 0.3], rtol=1e-6)
    assert position.shape == (4,)
    trained, position = nonzero_eps_index(jnp.zeros(2))
    np.testing.assert_array_equal(trained, [0.0, 0.0])
    np.testing.assert_array_equal(position, [0, 1])


def test_zero_eps_learned_attack_is_clean(point_mass_setup):
    from robustprune.study import evaluate_all

    cfg, victims, _ = point_mass_setup
    cfg = dataclasses.replace(
        cfg, eval=dataclasses.replace(cfg.eval, eps=(0.0, 0.5), attacks=("none", "sa_rl")),
        attack=dataclasses.replace(cfg.attack, adv_num_updates=2))
    table, _ = evaluate_all(cfg, victims, progress=False)
    rows = table.set_index(["attack", "eps"]).return_mean
    assert rows[("sa_rl", 0.0)] == pytest.approx(rows[("none", 0.0)], rel=1e-6)
    assert rows[("sa_rl", 0.5)] != pytest.approx(rows[("none", 0.0)], rel=1e-6)
