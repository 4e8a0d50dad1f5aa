"""Attacks: every perturbation stays in its ball, and PGD finds the analytic worst case."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune.attacks import (
    ATTACKS,
    LEARNED_ATTACKS,
    TRANSFER_ATTACKS,
    AttackSettings,
    Victim,
    ball_norm,
    project,
)
from robustprune.attacks.adversary import adversary_network, paad_actor, paad_attack
from robustprune.attacks.sarsa import q_network
from robustprune.envs import Normalizer
from robustprune.networks import Critic, GaussianPolicy


def make_victim(seed=0, obs_size=5, action_size=2):
    policy = GaussianPolicy(action_size, (16, 16), "tanh", -0.5)
    critic = Critic((16, 16), "tanh")
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    dummy = jnp.zeros((1, obs_size))
    return Victim(
        policy_params=policy.init(k1, dummy),
        critic_params=critic.init(k2, dummy),
        normalizer=Normalizer.create(obs_size),
        policy_apply=policy.apply,
        critic_apply=critic.apply,
    )


def with_attack_state(victim, attack, obs_size=5, action_size=2):
    """Give a victim random adversary parameters (learned attacks) or a surrogate (transfer attacks)."""
    kind = LEARNED_ATTACKS.get(attack)
    key = jax.random.PRNGKey(7)
    if kind == "sarsa":
        q = q_network(SETTINGS)
        return victim.replace(adversary=q.init(key, jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))))
    if kind in ("sa_rl", "pa_ad"):
        size = obs_size if kind == "sa_rl" else action_size
        net = adversary_network(SETTINGS, size)
        params = net.init(key, jnp.zeros((1, obs_size)))
        params = jax.tree_util.tree_map(lambda x: x * 3.0, params)  # large outputs: saturated perturbations
        return victim.replace(adversary={"policy": params, "normalizer": Normalizer.create(obs_size)})
    if attack in TRANSFER_ATTACKS:
        surrogate = make_victim(seed=9)
        return victim.replace(surrogate=surrogate.replace(normalizer=unit_normalizer(obs_size, 2.0, 0.5)))
    return victim


def unit_normalizer(obs_size, std=1.0, mean=0.0):
    return Normalizer(mean=jnp.full(obs_size, mean), m2=jnp.full(obs_size, std**2), count=jnp.ones(()))


SETTINGS = AttackSettings(norm="linf", pgd_steps=4, pgd_step_frac=0.5, hidden_sizes=(16, 16), restarts=2,
                          langevin_beta=0.5)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_perturbation_inside_ball(attack):
    victim = with_attack_state(make_victim().replace(normalizer=unit_normalizer(5)), attack)
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 5)) * 3
    scale = jnp.asarray([0.5, 1.0, 2.0, 0.1, 3.0])  # a per-dimension ball (the shared raw-space threat)
    cases = [(norm, s) for norm in ("linf", "l2") for s in (None, scale)]

    @jax.jit
    def fn(e, k):
        return [ATTACKS[attack](victim.replace(ball_scale=s), obs, k, e, dataclasses.replace(SETTINGS, norm=norm))
                for norm, s in cases]

    for i, eps in enumerate([0.0, 0.01, 2.0]):
        for (norm, s), perturbed in zip(cases, fn(jnp.asarray(eps), jax.random.PRNGKey(i))):
            assert perturbed.shape == obs.shape
            assert float(jnp.max(ball_norm(perturbed - obs, norm, s))) <= eps + 1e-5
            if norm == "linf" and s is not None:
                assert float(jnp.max(jnp.abs(perturbed - obs) - eps * s)) <= 3e-5


def linear_victim(weights):
    """A one-action linear policy μ(x) = w·x, as a Victim, in float64."""
    obs_size = weights.shape[0]
    policy = GaussianPolicy(1, (obs_size,), "relu", 0.0)
    params = policy.init(jax.random.PRNGKey(0), jnp.zeros((1, obs_size)))
    identity = {"kernel": jnp.eye(obs_size), "bias": jnp.full(obs_size, 100.0)}  # relu is linear for x > -100
    out = {"kernel": weights[:, None], "bias": jnp.asarray([-(weights.sum() * 100.0)])}
    params = {"params": {"mean": {"dense_0": identity, "out": out}, "log_std": params["params"]["log_std"]}}
    critic = Critic((4,), "tanh")
    return Victim(params, critic.init(jax.random.PRNGKey(1), jnp.zeros((1, obs_size))),
                  Normalizer.create(obs_size), policy.apply, critic.apply)


def test_mad_reaches_linf_corner():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        weights = jnp.asarray([0.5, -2.0, 1.0, 0.25])
        victim = linear_victim(weights)
        obs = jax.random.normal(jax.random.PRNGKey(3), (32, 4))
        eps = 0.1
        settings = AttackSettings(norm="linf", pgd_steps=20, pgd_step_frac=0.1)  # steps × step = 2ε
        perturbed = ATTACKS["mad"](victim, obs, jax.random.PRNGKey(4), jnp.asarray(eps), settings)
        change = jnp.abs(victim.mean(perturbed) - victim.mean(obs))[:, 0]
        worst = eps * jnp.sum(jnp.abs(weights))
        np.testing.assert_allclose(change, worst, atol=1e-4)
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_critic_reaches_linf_corner(x64):
    weights = jnp.asarray([0.5, -2.0, 1.0, 0.25])
    victim = linear_victim(weights)
    critic = GaussianPolicy(1, (4,), "relu", 0.0)  # a linear critic V(x) = w·x, from the same identity trick
    critic_params = linear_victim(-weights).policy_params
    victim = victim.replace(critic_params=critic_params, critic_apply=lambda p, x: critic.apply(p, x)[0][..., 0])
    obs = jax.random.normal(jax.random.PRNGKey(3), (32, 4))
    eps = 0.1
    settings = AttackSettings(norm="linf", pgd_steps=20, pgd_step_frac=0.1)  # steps × step = 2ε
    perturbed = ATTACKS["critic"](victim, obs, jax.random.PRNGKey(4), jnp.asarray(eps), settings)
    drop = victim.value(obs) - victim.value(perturbed)
    np.testing.assert_allclose(drop, eps * jnp.sum(jnp.abs(weights)), atol=1e-4)
    np.testing.assert_allclose(perturbed - obs, -eps * jnp.sign(-weights) * jnp.ones((32, 1)), atol=1e-9)


def linear_multi_victim(weights):
    """μ(x) = Wᵀx with W [obs, act], through the relu identity trick, in the current float precision."""
    obs_size, act = weights.shape
    policy = GaussianPolicy(act, (obs_size,), "relu", 0.0)
    log_std = jnp.zeros(act)
    identity = {"kernel": jnp.eye(obs_size), "bias": jnp.full(obs_size, 100.0)}
    out = {"kernel": weights, "bias": -100.0 * weights.sum(axis=0)}
    params = {"params": {"mean": {"dense_0": identity, "out": out}, "log_std": log_std}}
    critic = Critic((4,), "tanh")
    return Victim(params, critic.init(jax.random.PRNGKey(1), jnp.zeros((1, obs_size))), unit_normalizer(obs_size),
                  policy.apply, critic.apply)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_paad_actor_moves_action_along_direction(x64, norm):
    weights = jax.random.normal(jax.random.PRNGKey(5), (4, 3))
    victim = linear_multi_victim(weights)
    obs = jax.random.normal(jax.random.PRNGKey(6), (16, 4))
    direction = jax.random.uniform(jax.random.PRNGKey(7), (16, 3), minval=-1.0, maxval=1.0)
    eps = 0.2
    settings = AttackSettings(norm=norm, paad_actor_steps=1)  # FGSM
    perturbed = paad_actor(victim, obs, direction, jnp.asarray(eps), settings)
    change = victim.mean(perturbed) - victim.mean(obs)
    along = jnp.sum(change * direction, axis=-1)
    wd = direction @ weights.T  # [16, obs]: gradient of ⟨μ(ŝ) − μ(s), d⟩ with respect to ŝ
    best = eps * (jnp.sum(jnp.abs(wd), -1) if norm == "linf" else jnp.linalg.norm(wd, axis=-1))
    assert float(jnp.min(along)) > 0.0
    np.testing.assert_allclose(along, best, rtol=1e-6)


def test_paad_attack_follows_director(x64):
    weights = jax.random.normal(jax.random.PRNGKey(5), (4, 2))
    victim = linear_multi_victim(weights)
    direction = jnp.asarray([0.7, -1.0])
    net = adversary_network(AttackSettings(hidden_sizes=(8,)), 2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    params = jax.tree_util.tree_map(jnp.zeros_like, params)
    params["params"]["mean"]["out"]["bias"] = direction  # a director that always outputs d
    victim = victim.replace(adversary={"policy": params, "normalizer": unit_normalizer(4)})
    obs = jax.random.normal(jax.random.PRNGKey(6), (16, 4))
    settings = AttackSettings(hidden_sizes=(8,), paad_actor_steps=3)
    perturbed = paad_attack(victim, obs, jax.random.PRNGKey(1), jnp.asarray(0.1), settings)
    change = victim.mean(perturbed) - victim.mean(obs)
    cosine = change @ direction / (jnp.linalg.norm(change, axis=-1) * jnp.linalg.norm(direction))
    assert float(jnp.min(cosine)) > 0.0
    assert float(jnp.max(ball_norm(perturbed - obs, "linf"))) <= 0.1 + 1e-9


def test_shared_raw_scale_matches_reference_box():
    from robustprune.attacks import shared_raw_scale
    from robustprune.attacks.threat import reference_cells

    assert list(reference_cells([0.0, 0.0, 0.5, 0.5], [0, 1, 0, 1])) == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="no dense"):
        reference_cells([0.5, 0.0], [0, 1])
    std_ref, std_cell = jnp.asarray([1.0, 4.0]), jnp.asarray([2.0, 1.0])
    scale = shared_raw_scale(std_ref, std_cell)
    delta_normalized = project(jnp.asarray([[5.0, -5.0]]), 0.1, "linf", scale)
    np.testing.assert_allclose(jnp.abs(delta_normalized * std_cell), 0.1 * std_ref[None], rtol=1e-6)
