"""Robust Sarsa (RS) and RS+MAD: learn Q^π of the frozen victim, then attack through the policy.

Q is learned for the victim's **stochastic** policy (actions sampled from its Gaussian, clipped to [−1, 1] as
the environment receives them), so that Q varies with the action around μ(s). Training is on-policy TD(0)
(Sarsa targets r + γ·Q(s', a') on consecutive steps) plus a smoothness penalty
weight · E[max_{(ŝ, â) ∈ B_r(s, a)} (Q(ŝ, â) − Q(s, a))²], with the inner maximum found by a few PGD steps.
The attack then minimizes Q(s, μ(ŝ)): Q at the true state, the gradient through the policy (Zhang et al.,
2021, "Robust Reinforcement Learning on State Observations with Learned Optimal Adversary").
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from robustprune.attacks.pgd import pgd_maximize
from robustprune.attacks.settings import AttackSettings
from robustprune.attacks.victim import Victim
from robustprune.networks import MLP


class QNetwork(nn.Module):
    """Q(s, a) on normalized observations [..., obs] and actions [..., act]; returns [...]."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        return MLP(self.hidden_sizes, 1, self.activation, name="q")(x)[..., 0]


def q_network(settings: AttackSettings) -> QNetwork:
    return QNetwork(tuple(settings.hidden_sizes), settings.activation)


@struct.dataclass
class SarsaData:
    """Consecutive on-policy steps, flattened to [samples, ...]. terminal: no bootstrap. valid: 0 where the
    step was truncated by the time limit (auto-reset replaced the next state, so there is no Sarsa target)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    next_action: jax.Array
    terminal: jax.Array
    valid: jax.Array


def collect_sarsa_data(env, victim: Victim, key: jax.Array, num_envs: int, unroll_length: int,
                       reward_scale: float) -> SarsaData:
    """Roll the victim's stochastic policy in a batched auto-resetting env: num_envs × (unroll_length − 1)
    samples. Rewards are multiplied by reward_scale (the victim trainer's), to keep Q near 1."""
    reset_key, step_key = jax.random.split(key)
    state = env.reset(jax.random.split(reset_key, num_envs))

    def step(state, k):
        obs = victim.normalizer.normalize(state.obs)
        action = jnp.clip(victim.sample(obs, k), -1.0, 1.0)
        state = env.step(state, action)
        return state, (obs, action, state.reward, state.done, state.info["truncation"])

    _, (obs, action, reward, done, trunc) = jax.lax.scan(step, state, jax.random.split(step_key, unroll_length))
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    return SarsaData(
        obs=flat(obs[:-1]),
        action=flat(action[:-1]),
        reward=flat(reward[:-1]) * reward_scale,
        next_obs=flat(obs[1:]),
        next_action=flat(action[1:]),
        terminal=flat(done[:-1] * (1.0 - trunc[:-1])),
        valid=flat(1.0 - trunc[:-1]),
    )


def sarsa_loss(q_params, batch: SarsaData, key, radius, weight, *, settings: AttackSettings, gamma: float,
               penalty_steps: int):
    """TD(0) loss with a stopped-gradient Sarsa target, plus the ε-ball smoothness penalty on Q."""
    q = q_network(settings)
    pred = q.apply(q_params, batch.obs, batch.action)
    next_q = jax.lax.stop_gradient(q.apply(q_params, batch.next_obs, batch.next_action))
    target = batch.reward + gamma * (1.0 - batch.terminal) * next_q
    td = jnp.sum(batch.valid * (pred - target) ** 2) / jnp.maximum(jnp.sum(batch.valid), 1.0)

    obs_size = batch.obs.shape[-1]
    joint = jnp.concatenate([batch.obs, batch.action], axis=-1)
    frozen = jax.lax.stop_gradient(q_params)
    anchor = jax.lax.stop_gradient(pred)
    gap = lambda p, x: (q.apply(p, x[:, :obs_size], x[:, obs_size:]) - anchor) ** 2  # noqa: E731
    worst = jax.lax.stop_gradient(pgd_maximize(lambda x: gap(frozen, x), joint, key, radius, norm=settings.norm,
                                               steps=penalty_steps, step_size=2.0 * radius / penalty_steps))
    penalty = jnp.mean(gap(q_params, worst))
    return td + weight * penalty, {"td": td, "penalty": penalty}


def train_q(data: SarsaData, key, radius, weight, *, settings: AttackSettings, gamma: float, epochs: int,
            num_minibatches: int, learning_rate: float, penalty_steps: int):
    """Fit one Q-function to `data` by Adam on shuffled minibatches. radius and weight may be traced.

    Returns (Q parameters, the last epoch's mean TD loss).
    """
    q = q_network(settings)
    init_key, loop_key = jax.random.split(key)
    params = q.init(init_key, data.obs[:1], data.action[:1])
    opt = optax.adam(learning_rate)
    n = data.obs.shape[0]

    def sgd(carry, xs):
        params, opt_state = carry
        batch, k = xs
        grads, info = jax.grad(sarsa_loss, has_aux=True)(
            params, batch, k, radius, weight, settings=settings, gamma=gamma, penalty_steps=penalty_steps)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), info["td"]

    def epoch(carry, k):
        perm_key, step_key = jax.random.split(k)
        perm = jax.random.permutation(perm_key, n)
        batches = jax.tree_util.tree_map(lambda x: x[perm].reshape(num_minibatches, -1, *x.shape[1:]), data)
        carry, td = jax.lax.scan(sgd, carry, (batches, jax.random.split(step_key, num_minibatches)))
        return carry, jnp.mean(td)

    (params, _), td = jax.lax.scan(epoch, (params, opt.init(params)), jax.random.split(loop_key, epochs))
    return params, td[-1]


def fit_sarsa(env, victim: Victim, key, radii, weights, *, settings: AttackSettings, gamma: float,
              reward_scale: float, num_envs: int, unroll_length: int, epochs: int, num_minibatches: int,
              learning_rate: float, penalty_steps: int):
    """Collect one on-policy data set and fit one Q per (radius, weight) member, batched with vmap.

    radii, weights: [members]. Returns (Q parameters with a leading [members] axis, TD loss [members]).
    """
    data_key, train_key = jax.random.split(key)
    data = collect_sarsa_data(env, victim, data_key, num_envs, unroll_length, reward_scale)
    fit_one = lambda k, r, w: train_q(  # noqa: E731
        data, k, r, w, settings=settings, gamma=gamma, epochs=epochs, num_minibatches=num_minibatches,
        learning_rate=learning_rate, penalty_steps=penalty_steps)
    keys = jax.random.split(train_key, radii.shape[0])
    return jax.vmap(fit_one)(keys, radii, weights)


def _rs_objective(victim: Victim, obs, settings: AttackSettings, kl_ratio):
    """Per-row objective to maximize: (1 − ratio)·(−Q(s, μ(ŝ))) + ratio·KL(π(·|s) ‖ π(·|ŝ))."""
    q = q_network(settings)
    clean_mean = jax.lax.stop_gradient(victim.dist_params(obs))

    def objective(x):
        value = q.apply(victim.adversary, obs, jnp.clip(victim.mean(x), -1.0, 1.0))
        return (1.0 - kl_ratio) * (-value) + kl_ratio * victim.kl_to(clean_mean, x)

    return objective


def _rs_pgd(victim: Victim, obs, key, eps, settings: AttackSettings, kl_ratio):
    return pgd_maximize(_rs_objective(victim, obs, settings, kl_ratio), obs, key, eps, norm=settings.norm,
                        steps=settings.pgd_steps, step_size=settings.pgd_step_frac * eps, scale=victim.ball_scale,
                        restarts=settings.restarts)


def rs_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """Robust Sarsa attack: PGD minimizing Q(s, μ(ŝ)) with the Q-function in victim.adversary."""
    return _rs_pgd(victim, obs, key, eps, settings, 0.0)


def rs_mad_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """RS+MAD: PGD on the mixed objective, weight settings.rs_mad_ratio on the MAD (KL) term."""
    return _rs_pgd(victim, obs, key, eps, settings, settings.rs_mad_ratio)
