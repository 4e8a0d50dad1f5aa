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
from robustprune.pruning import ALLOCATIONS, METHODS, MaskParams, ScheduleParams, make_schedule, schedule_settings
from robustprune.pruning.optim import critic_kernels
from robustprune.train.robust import RobustParams, make_robust_params

SCORE_SALT = 0x5C0E5  # folded into the seed's key to draw a cell's random pruning scores


@struct.dataclass
class CellParams:
    """Per-cell traced settings. Batched cells carry a leading cell axis on every field."""

    key: jax.Array
    schedule: ScheduleParams
    learning_rate: jax.Array
    masks: MaskParams
    robust: RobustParams  # κ and training ε of the robust-training method (robustprune.train.robust)


@struct.dataclass
class TrainState:
    """Everything a PPO update reads and writes, for one cell.

    params: {"policy", "critic"} Flax parameters (policy kernels already multiplied by `masks`).
    masks: tuple of {0, 1} arrays, one per mean-network kernel.
    critic_masks: tuple of {0, 1} arrays, one per critic kernel when prune.prune_critic, else ().
    env_state: batched Brax state of the training environments, num_envs of them.
    episode_return: [num_envs] return of each environment's unfinished episode.
    diverged_at: int32 scalar, the update at which params or losses first became NaN/Inf, or -1.
    """

    params: dict
    opt_state: optax.OptState
    masks: tuple
    critic_masks: tuple
    normalizer: Normalizer
    env_state: object
    episode_return: jax.Array
    key: jax.Array
    update: jax.Array
    diverged_at: jax.Array


def make_networks(cfg: StudyConfig, action_size: int) -> tuple[GaussianPolicy, Critic]:
    """The policy (Gaussian or categorical, by network.policy) and the critic of a config."""
    from robustprune.policies import make_policy

    net = cfg.network
    policy = make_policy(net, action_size)
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
    critic_masks = ()
    if cfg.prune.prune_critic:
        critic_masks = tuple(jnp.ones_like(k) for k in critic_kernels(params["critic"], len(cfg.network.hidden_sizes)))

    env_state = env.reset(jax.random.split(env_key, cfg.ppo.num_envs))
    return TrainState(
        params=params,
        opt_state=opt_state,
        masks=masks,
        critic_masks=critic_masks,
        normalizer=Normalizer.create(env.observation_size),
        env_state=env_state,
        episode_return=jnp.zeros(cfg.ppo.num_envs),
        key=key,
        update=jnp.zeros((), jnp.int32),
        diverged_at=jnp.full((), -1, jnp.int32),
    )


def cell_schedule_settings(cfg: StudyConfig, sparsity: float, schedule: str) -> dict[str, float]:
    """The schedule family's fields of one cell (Python floats), as `schedule_settings` gives them."""
    p = cfg.prune
    return schedule_settings(
        schedule, sparsity, cfg.ppo.num_updates, start_frac=p.start_frac, end_frac=p.end_frac,
        exponent=p.exponent, period=p.update_period, micro_increment=p.micro_increment,
        micro_period=p.micro_period,
    )


def make_cell_params(
    cfg: StudyConfig,
    sparsity: float,
    seed: int,
    schedule: str | None = None,
    method: str | None = None,
    allocation: str | None = None,
    kappa: float | None = None,
    train_eps: float | None = None,
) -> CellParams:
    """Build one cell's traced settings. Schedule, method, allocation, κ and the training ε default to the
    config's first."""
    prune = cfg.prune
    schedule = prune.schedules[0] if schedule is None else schedule
    method = prune.methods[0] if method is None else method
    allocation = prune.allocations[0] if allocation is None else allocation
    key = jax.random.PRNGKey(seed)
    mask_params = MaskParams(
        method=jnp.asarray(METHODS.index(method), jnp.int32),
        allocation=jnp.asarray(ALLOCATIONS.index(allocation), jnp.int32),
        max_sparsity_first_last=jnp.asarray(float(prune.max_sparsity_first_last)),
        score_key=jax.random.fold_in(key, SCORE_SALT),
    )
    return CellParams(
        key=key,
        schedule=make_schedule(cell_schedule_settings(cfg, sparsity, schedule)),
        learning_rate=jnp.asarray(float(cfg.ppo.learning_rate)),
        masks=mask_params,
        robust=make_robust_params(cfg.robust.kappas[0] if kappa is None else kappa,
                                  cfg.robust.train_eps[0] if train_eps is None else train_eps),
    )


def stack_cells(cells: list[CellParams]) -> CellParams:
    """Stack cells along a new leading axis for `jax.vmap`."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *cells)
