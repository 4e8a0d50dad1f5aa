"""Attacks: every perturbation stays in its ball, and PGD finds the analytic worst case."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune.attacks import ATTACKS, AttackSettings, Victim, ball_norm
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


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_perturbation_inside_ball(attack, norm):
    victim = make_victim()
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 5)) * 3
    settings = AttackSettings(norm=norm, pgd_steps=10, pgd_step_frac=0.3)
    fn = jax.jit(lambda e, k: ATTACKS[attack](victim, obs, k, e, settings))
    for i, eps in enumerate([0.0, 0.01, 0.3, 2.0]):
        perturbed = fn(jnp.asarray(eps), jax.random.PRNGKey(i))
        assert perturbed.shape == obs.shape
        assert float(jnp.max(ball_norm(perturbed - obs, norm))) <= eps + 1e-5


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
