"""Deterministic rollouts under attack, batched over cells × ε.

The adversary perturbs the normalized observation that the policy sees. The environment steps with the
true state, and the reward is the true reward. Every perturbation is checked against its ball.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct

from robustprune.attacks import ATTACKS, Victim, ball_violation, settings_from_config
from robustprune.config import StudyConfig
from robustprune.envs import make_eval_env
from robustprune.policies import policy_head
from robustprune.train.state import make_networks


@struct.dataclass
class EvalResult:
    """Per (cell, ε) results. returns: [episodes]. tv_max: largest TV between π(·|s) and π(·|ŝ) over the
    visited states, []. violation: largest excess of ‖ŝ − s‖ over ε, [] (≤ 0 when every ŝ is in its ball)."""

    returns: jax.Array
    tv_max: jax.Array
    violation: jax.Array


@functools.lru_cache(maxsize=32)
def _victim_networks(cfg: StudyConfig, action_size: int):
    """One (policy, critic) pair per config, so victims of every chunk share static apply functions and
    therefore one compiled evaluation program (a new Flax module's `apply` never compares equal)."""
    return make_networks(cfg, action_size)


def make_victim(cfg: StudyConfig, params: dict, normalizer, action_size: int) -> Victim:
    """Freeze a trained cell's parameters and normalizer as an attack target."""
    policy, critic = _victim_networks(cfg, action_size)
    return Victim(
        policy_params=params["policy"],
        critic_params=params["critic"],
        normalizer=normalizer,
        policy_apply=policy.apply,
        critic_apply=critic.apply,
        head=policy_head(cfg.network, action_size),
    )


def rollout(cfg: StudyConfig, attack: str, victim: Victim, eps: jax.Array, key: jax.Array,
            adversary=None) -> EvalResult:
    """Run cfg.eval.episodes deterministic episodes (mean action, or argmax
    for a categorical policy) of the victim under one attack at radius ε.

    adversary: the learned attack's parameters for this cell and ε (None keeps victim.adversary).
    """
    env_cfg, ev = cfg.env, cfg.eval
    env = make_eval_env(env_cfg.name, env_cfg.backend, ev.episode_length, env_cfg.action_repeat)
    attack_fn = ATTACKS[attack]
    settings = settings_from_config(cfg)
    if adversary is not None:
        victim = victim.replace(adversary=adversary)
    reset_key, attack_key = jax.random.split(key)
    state = env.reset(jax.random.split(reset_key, ev.episodes))

    def step(carry, step_key):
        state, returns, alive, tv_max, violation = carry
        obs = victim.normalizer.normalize(state.obs)
        perturbed = attack_fn(victim, obs, step_key, eps, settings)
        violation = jnp.maximum(violation, ball_violation(obs, perturbed, eps, ev.norm, victim.ball_scale))

        tv = victim.tv_to(victim.dist_params(obs), perturbed)
        tv_max = jnp.maximum(tv_max, jnp.max(jnp.where(alive > 0, tv, 0.0)))

        state = env.step(state, jnp.clip(victim.action(perturbed), -1.0, 1.0))
        returns = returns + state.reward * alive
        alive = alive * (1.0 - state.done)
        return (state, returns, alive, tv_max, violation), None

    n = ev.episodes
    zero = jnp.zeros(())
    init = (state, jnp.zeros(n), jnp.ones(n), zero, jnp.full((), -jnp.inf))
    keys = jax.random.split(attack_key, ev.episode_length)
    (_, returns, _, tv_max, violation), _ = jax.lax.scan(step, init, keys)
    return EvalResult(returns=returns, tv_max=tv_max, violation=violation)


def evaluate_grid(
    cfg: StudyConfig, attack: str, victims: Victim, eps_values: jax.Array, key: jax.Array, adversaries=None
) -> EvalResult:
    """Evaluate every cell (leading axis of `victims`) at every ε: results have shape [cells, num_eps, ...].

    The same key drives every cell and ε, so cells face the same initial states (common random numbers).
    adversaries: learned attack parameters with leading axes [cells, num_eps] (or None).
    """
    per_eps = jax.vmap(functools.partial(rollout, cfg, attack), in_axes=(None, 0, None, 0))
    per_cell = jax.vmap(per_eps, in_axes=(0, None, None, 0))
    return per_cell(victims, eps_values, key, adversaries)


def evaluate_members(
    cfg: StudyConfig, attack: str, victims: Victim, eps_values: jax.Array, key: jax.Array, adversaries
) -> tuple[EvalResult, jax.Array]:
    """Evaluate every member of a learned attack's scan and keep the strongest per cell and ε.

    adversaries: parameters with leading axes [cells, num_eps, members]. Returns the results of the member
    with the lowest mean return, shapes as `evaluate_grid`'s, and that member's index [cells, num_eps].
    """
    per_member = jax.vmap(lambda adv: evaluate_grid(cfg, attack, victims, eps_values, key, adv))
    results = per_member(jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 2, 0), adversaries))
    best = jnp.argmin(results.returns.mean(axis=-1), axis=0)  # [cells, num_eps]
    pick = lambda x: jnp.take_along_axis(x, best.reshape(1, *best.shape, *([1] * (x.ndim - 3))), axis=0)[0]  # noqa: E731
    return jax.tree_util.tree_map(pick, results), best
