"""Training the learned attacks for a whole grid in one batched program per kind.

Every adversary is trained per cell × ε × member, where a member is one setting of a small scan (learning
rates for SA-RL and PA-AD; smoothing radius × penalty weight for Robust Sarsa). The results carry leading
axes [cells, num_eps, members]; evaluation runs every member and keeps the strongest (lowest return) per
cell and ε, as the reference protocol does.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import time

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from robustprune.attacks.adversary import AdversaryEnv
from robustprune.attacks.sarsa import fit_sarsa
from robustprune.attacks.settings import settings_from_config
from robustprune.config import StudyConfig
from robustprune.envs import make_base_env, make_train_env
from robustprune.train import CellParams, init_train_state, make_cell_params, train_update

logger = logging.getLogger(__name__)


def adversary_config(cfg: StudyConfig) -> StudyConfig:
    """The victim's config with PPO sized by cfg.attack.adv_* (the adversary trains dense, never pruned)."""
    a = cfg.attack
    ppo = dataclasses.replace(cfg.ppo, num_envs=a.adv_num_envs, unroll_length=a.adv_unroll_length,
                              num_updates=a.adv_num_updates, update_epochs=a.adv_update_epochs,
                              num_minibatches=a.adv_num_minibatches)
    # The adversary is a plain Gaussian PPO agent, whatever the victim's policy kind and training method.
    network = dataclasses.replace(cfg.network, policy="gaussian")
    robust = dataclasses.replace(cfg.robust, methods=("vanilla",))
    return dataclasses.replace(cfg, ppo=ppo, prune=dataclasses.replace(cfg.prune, sparsities=(0.0,)),
                               network=network, robust=robust)


def adversary_env(cfg: StudyConfig, kind: str, victim, eps):
    """The batched, auto-resetting attacker MDP around one victim at radius ε (eval horizon and repeat)."""
    from brax.envs.wrappers import training as brax_wrappers

    base = make_base_env(cfg.env.name, cfg.env.backend)
    env = AdversaryEnv(base, victim, eps, kind, settings_from_config(cfg), cfg.env.action_repeat)
    env = brax_wrappers.EpisodeWrapper(env, cfg.eval.episode_length, 1)
    return brax_wrappers.AutoResetWrapper(brax_wrappers.VmapWrapper(env))


def _dense_cell(cfg: StudyConfig, key, learning_rate) -> CellParams:
    """A never-pruned cell (sparsity 0) with a traced key and learning rate."""
    return make_cell_params(cfg, 0.0, 0).replace(key=key, learning_rate=learning_rate)


def _flat_jobs(victims, eps_values, members: int, key):
    """Index every (cell, ε, member) job: cell and ε indices [jobs], keys [jobs]."""
    cells, num_eps = victims.normalizer.mean.shape[0], eps_values.shape[0]
    idx = jnp.asarray(list(itertools.product(range(cells), range(num_eps), range(members))))
    keys = jax.random.split(key, idx.shape[0])
    return idx, keys, (cells, num_eps, members)


def fit_ppo_adversaries(cfg: StudyConfig, kind: str, victims, eps_values, key, *, progress: bool = True):
    """Train one PPO adversary (kind "sa_rl" or "pa_ad") per cell × ε × learning rate, all in one program.

    victims: a Victim with a leading cell axis. eps_values: [num_eps]. Returns (adversary parameters
    {"policy", "normalizer"} with leading axes [cells, num_eps, members], final training return of the
    victim under each adversary [cells, num_eps, members] (minus the adversary's own return), seconds).
    """
    adv_cfg = adversary_config(cfg)
    lrs = jnp.asarray(cfg.attack.adv_learning_rates)
    idx, keys, shape = _flat_jobs(victims, eps_values, lrs.shape[0], key)
    jobs = (idx[:, 0], eps_values[idx[:, 1]], lrs[idx[:, 2]], keys)
    length = _segment(adv_cfg.ppo.num_updates)

    def setup(job):
        cell_i, eps, lr, k = job
        victim = jax.tree_util.tree_map(lambda x: x[cell_i], victims)
        return adversary_env(cfg, kind, victim, eps), _dense_cell(adv_cfg, k, lr)

    def init(job):
        env, cell = setup(job)
        return init_train_state(adv_cfg, cell, env)

    def segment(job, ts):
        env, cell = setup(job)
        return jax.lax.scan(functools.partial(train_update, adv_cfg, cell, env=env), ts, None, length)

    start = time.perf_counter()
    ts = jax.jit(jax.vmap(init))(jobs)
    segment_fn = jax.jit(jax.vmap(segment))
    returns = []
    bar = tqdm(total=adv_cfg.ppo.num_updates, desc=f"train {idx.shape[0]} {kind} adversaries", unit="update",
               disable=not progress)
    for _ in range(adv_cfg.ppo.num_updates // length):
        ts, metrics = segment_fn(jobs, ts)
        returns.append(metrics["episode_return"])
        bar.update(length)
    bar.close()
    jax.block_until_ready(ts)  # dispatch is asynchronous: time the training, not the queueing
    seconds = time.perf_counter() - start
    victim_return = -jnp.concatenate(returns, axis=1)[:, -max(1, length):].mean(axis=1)
    params = {"policy": ts.params["policy"], "normalizer": ts.normalizer}
    unflat = lambda x: x.reshape(*shape, *x.shape[1:])  # noqa: E731
    return jax.tree_util.tree_map(unflat, params), unflat(victim_return), seconds


def fit_sarsa_grid(cfg: StudyConfig, victims, eps_values, key):
    """Fit the Robust Sarsa Q-functions of every cell: one data set per cell, one Q per radius × weight.

    The Q-functions do not depend on ε, so they are broadcast over it. Returns (Q parameters with leading axes
    [cells, num_eps, members], last-epoch TD loss [cells, members], seconds).
    """
    a = cfg.attack
    pairs = list(itertools.product(a.rs_radii, a.rs_weights))
    radii = jnp.asarray([p[0] for p in pairs])
    weights = jnp.asarray([p[1] for p in pairs])
    env = make_train_env(cfg.env.name, cfg.env.backend, cfg.eval.episode_length, cfg.env.action_repeat)
    fit = functools.partial(
        fit_sarsa, env, settings=settings_from_config(cfg), gamma=cfg.ppo.gamma, reward_scale=cfg.ppo.reward_scale,
        num_envs=a.rs_num_envs, unroll_length=a.rs_unroll_length, epochs=a.rs_epochs,
        num_minibatches=a.rs_num_minibatches, learning_rate=a.rs_learning_rate, penalty_steps=a.rs_penalty_steps)
    cells = victims.normalizer.mean.shape[0]
    start = time.perf_counter()
    params, td = jax.jit(jax.vmap(fit, in_axes=(0, 0, None, None)))(victims, jax.random.split(key, cells),
                                                                   radii, weights)
    jax.block_until_ready(params)
    num_eps = eps_values.shape[0]
    tiled = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x[:, None], (cells, num_eps, *x.shape[1:])), params)
    return tiled, td, time.perf_counter() - start


def _segment(num_updates: int, target: int = 10) -> int:
    return max(d for d in range(1, min(target, num_updates) + 1) if num_updates % d == 0)


def fit_adversaries(cfg: StudyConfig, kind: str, victims, eps_values, key, *, progress: bool = True):
    """Train the adversaries of one kind ("sarsa", "sa_rl" or "pa_ad") for every cell × ε × member.

    Returns (parameters with leading axes [cells, num_eps, members], a dict of training diagnostics).
    """
    victims = victims.replace(adversary=None)
    if kind == "sarsa":
        params, td, seconds = fit_sarsa_grid(cfg, victims, eps_values, key)
        return params, {"fit_s": seconds, "td_loss": td}
    params, train_return, seconds = fit_ppo_adversaries(cfg, kind, victims, eps_values, key, progress=progress)
    return params, {"fit_s": seconds, "victim_train_return": train_return}
