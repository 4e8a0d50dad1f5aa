"""Training state and per-cell parameters.

`CellParams` holds what varies between the cells of a grid (keys, sparsity schedule, learning rate) as
traced arrays, so that `jax.vmap(train)` trains a whole grid in one compiled program. Everything else
comes from the static `StudyConfig`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from robustprune.config import StudyConfig
from robustprune.envs import Normalizer, make_train_env
from robustprune.networks import Critic, GaussianPolicy, dense_masks
from robustprune.pruning import ScheduleParams


@struct.dataclass
class CellParams:
    """Per-cell traced settings. Batched cells carry a leading cell axis on every field."""

    key: jax.Array
    schedule: ScheduleParams
    learning_rate: jax.Array


@struct.dataclass
class TrainState:
    """Everything a PPO update reads and writes, for one cell.

    params: {"policy", "critic"} Flax parameters (policy kernels already multiplied by `masks`).
    masks: tuple of {0, 1} arrays, one per mean-network kernel.
    env_state: batched Brax state of the training environments, num_envs of them.
    episode_return: [num_envs] return of each environment's unfinished episode.
    """

    params: dict
    opt_state: optax.OptState
    masks: tuple
    normalizer: Normalizer
    env_state: object
    episode_return: jax.Array
    key: jax.Array
    update: jax.Array


def make_networks(cfg: StudyConfig, action_size: int) -> tuple[GaussianPolicy, Critic]:
    net = cfg.network
    policy = GaussianPolicy(action_size, net.hidden_sizes, net.activation, net.init_log_std)
    critic = Critic(net.hidden_sizes, net.activation)
    return policy, critic


def make_optimizer(cfg: StudyConfig) -> optax.GradientTransformation:
    """Adam without the learning rate, which is a traced per-cell field applied by the trainer."""
    return optax.chain(optax.clip_by_global_norm(cfg.ppo.max_grad_norm), optax.scale_by_adam(eps=1e-5))


def train_env(cfg: StudyConfig):
    env = cfg.env
    return make_train_env(env.name, env.backend, env.episode_length, env.action_repeat)


def init_train_state(cfg: StudyConfig, cell: CellParams, env=None) -> TrainState:
    """Initialize networks, optimizer, dense masks, normalizer and environments for one cell.

    `env` is a batched, auto-resetting environment (as from `make_train_env`); None builds it from cfg.env.
    Passing one lets the same trainer train agents on other MDPs, such as a learned adversary's.
    """
    env = train_env(cfg) if env is None else env
    policy, critic = make_networks(cfg, env.action_size)
    key, policy_key, critic_key, env_key = jax.random.split(cell.key, 4)

    dummy = jnp.zeros((1, env.observation_size))
    params = {"policy": policy.init(policy_key, dummy), "critic": critic.init(critic_key, dummy)}
    opt_state = make_optimizer(cfg).init(params)
    masks = dense_masks(params["policy"], len(cfg.network.hidden_sizes))

    env_state = env.reset(jax.random.split(env_key, cfg.ppo.num_envs))
    return TrainState(
        params=params,
        opt_state=opt_state,
        masks=masks,
        normalizer=Normalizer.create(env.observation_size),
        env_state=env_state,
        episode_return=jnp.zeros(cfg.ppo.num_envs),
        key=key,
        update=jnp.zeros((), jnp.int32),
    )


def make_cell_params(cfg: StudyConfig, sparsity: float, seed: int) -> CellParams:
    """Build one cell's traced settings from the study config."""
    n = cfg.ppo.num_updates
    prune = cfg.prune
    start = round(prune.start_frac * (n - 1))
    end = start if prune.schedule == "one_shot" else round(prune.end_frac * (n - 1))
    schedule = ScheduleParams(
        final_sparsity=jnp.asarray(float(sparsity)),
        start=jnp.asarray(float(start)),
        end=jnp.asarray(float(end)),
        exponent=jnp.asarray(float(prune.exponent)),
        period=jnp.asarray(float(prune.update_period)),
    )
    return CellParams(
        key=jax.random.PRNGKey(seed),
        schedule=schedule,
        learning_rate=jnp.asarray(float(cfg.ppo.learning_rate)),
    )


def stack_cells(cells: list[CellParams]) -> CellParams:
    """Stack cells along a new leading axis for `jax.vmap`."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *cells)
