"""PPO with pruning masks, written as top-level phases so that `jax.vmap(train)` trains a grid.

One update: collect an unroll from num_envs environments, compute GAE advantages, run epochs of clipped
PPO minibatch steps, update the observation normalizer, then update the pruning masks from the schedule.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import struct

from robustprune.config import StudyConfig
from robustprune.networks import apply_masks, mean_kernels
from robustprune.policies import policy_head
from robustprune.train import robust
from robustprune.pruning import (
    achieved_sparsity,
    apply_critic_masks,
    compute_masks,
    critic_kernels,
    full_mask_tree,
    mask_gradients,
    scheduled_sparsity,
    zero_pruned_moments,
)
from robustprune.train.state import (
    CellParams,
    TrainState,
    init_train_state,
    make_networks,
    make_optimizer,
    train_env,
)

# Incremented each time `train` is traced, so tests can check that a whole grid compiles once.
TRACE_COUNT = {"train": 0}


@struct.dataclass
class Transition:
    """One collected step for every environment. Leading axes: [unroll_length, num_envs]."""

    obs: jax.Array  # normalized observation the policy saw
    raw_obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array
    truncation: jax.Array


def gaussian_log_prob(action: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log-density of a diagonal Gaussian, summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def collect(cfg: StudyConfig, ts: TrainState, env=None, perturb=None) -> tuple[TrainState, Transition, dict]:
    """Step the training environments for unroll_length steps with the current stochastic policy.

    env: the batched auto-resetting environment (None: built from cfg.env). perturb: optional
    (params, normalized obs [num_envs, obs], key) → perturbed obs, applied to what the policy sees (the
    stored `obs` is then the perturbed one); None leaves the key stream, and so training, unchanged.
    """
    env = train_env(cfg) if env is None else env
    policy, critic = make_networks(cfg, env.action_size)
    head = policy_head(cfg.network, env.action_size)

    def step(carry, _):
        ts, finished_return, finished_count = carry
        key, action_key = jax.random.split(ts.key)
        raw_obs = ts.env_state.obs
        obs = ts.normalizer.normalize(raw_obs)
        if perturb is not None:
            key, perturb_key = jax.random.split(key)
            obs = perturb(ts.params, obs, perturb_key)
        dist = head.dist(policy.apply(ts.params["policy"], obs))
        action = head.sample(dist, action_key)
        value = critic.apply(ts.params["critic"], obs)

        env_state = env.step(ts.env_state, jnp.clip(action, -1.0, 1.0))

        episode_return = ts.episode_return + env_state.reward
        finished_return += jnp.sum(episode_return * env_state.done)
        finished_count += jnp.sum(env_state.done)
        transition = Transition(
            obs=obs,
            raw_obs=raw_obs,
            action=action,
            log_prob=head.log_prob(dist, action),
            value=value,
            reward=env_state.reward,
            done=env_state.done,
            truncation=env_state.info["truncation"],
        )
        ts = ts.replace(env_state=env_state, episode_return=episode_return * (1 - env_state.done), key=key)
        return (ts, finished_return, finished_count), transition

    zero = jnp.zeros(())
    (ts, ret, count), traj = jax.lax.scan(step, (ts, zero, zero), None, cfg.ppo.unroll_length)
    metrics = {"episode_return": ret / jnp.maximum(count, 1.0), "episodes": count}
    return ts, traj, metrics


def compute_gae(cfg: StudyConfig, traj: Transition, last_value: jax.Array) -> tuple[jax.Array, jax.Array]:
    """GAE(λ) advantages and value targets, both [unroll_length, num_envs].

    A step that ends by time limit (truncation) gets no advantage, because auto-reset replaced the state
    that its bootstrap value needs.
    """
    gamma, lam = cfg.ppo.gamma, cfg.ppo.gae_lambda
    termination = traj.done * (1.0 - traj.truncation)
    keep = 1.0 - traj.truncation
    reward = traj.reward * cfg.ppo.reward_scale

    def backward(carry, step):
        gae, next_value = carry
        r, v, term, k = step
        delta = (r + gamma * next_value * (1.0 - term) - v) * k
        gae = delta + gamma * lam * (1.0 - term) * k * gae
        return (gae, v), gae

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(backward, init, (reward, traj.value, termination, keep), reverse=True)
    return advantages, advantages + traj.value


def ppo_loss(cfg: StudyConfig, params: dict, batch: tuple) -> tuple[jax.Array, dict]:
    """Clipped PPO surrogate plus value loss, minus the entropy bonus, on one minibatch of flat transitions."""
    traj, advantages, targets = batch
    policy, critic = make_networks(cfg, traj.action.shape[-1])
    head = policy_head(cfg.network, traj.action.shape[-1])
    dist = head.dist(policy.apply(params["policy"], traj.obs))
    value = critic.apply(params["critic"], traj.obs)

    ratio = jnp.exp(head.log_prob(dist, traj.action) - traj.log_prob)
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    clipped = jnp.clip(ratio, 1 - cfg.ppo.clip_eps, 1 + cfg.ppo.clip_eps)
    policy_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    value_loss = 0.5 * jnp.mean((value - targets) ** 2)

    entropy = jnp.mean(head.entropy(dist))
    loss = policy_loss + cfg.ppo.value_coef * value_loss - cfg.ppo.entropy_coef * entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def _penalized_loss(cfg: StudyConfig, cell: CellParams, update, key, params: dict, batch: tuple):
    """`ppo_loss` plus the cell's robust-training penalty κ·R on the minibatch's observations."""
    loss, info = ppo_loss(cfg, params, batch)
    penalty, penalty_info = robust.robust_penalty(cfg, cell.robust, update, params, batch[0].obs, key,
                                                  batch[0].action.shape[-1])
    return loss + penalty, {**info, **penalty_info}


def sgd_step(cfg: StudyConfig, cell: CellParams, ts: TrainState, batch: tuple) -> tuple[TrainState, dict]:
    """One masked Adam step. Pruned weights get zero gradient, so they and their moments stay zero.

    With prune.enabled False (a static switch) no mask is applied at all, for overhead measurements.
    SA-PPO and Lipschitz cells add their robust penalty to the loss (`robustprune.train.robust`).
    """
    mask_tree = full_mask_tree(ts.params, ts.masks, ts.critic_masks)
    loss_fn = functools.partial(ppo_loss, cfg)
    if robust.needs_penalty(cfg):
        key, penalty_key = jax.random.split(ts.key)
        ts = ts.replace(key=key)
        loss_fn = functools.partial(_penalized_loss, cfg, cell, ts.update, penalty_key)
    grads, info = jax.grad(loss_fn, has_aux=True)(ts.params, batch)
    if cfg.prune.enabled:
        grads = mask_gradients(grads, mask_tree)
    else:
        mask_tree = jax.tree_util.tree_map(lambda _: 1.0, mask_tree)

    updates, opt_state = make_optimizer(cfg).update(grads, ts.opt_state, ts.params)
    lr = cell.learning_rate * (1.0 - ts.update / cfg.ppo.num_updates)  # linear annealing to zero
    updates = jax.tree_util.tree_map(lambda u, m: -lr * u * m, updates, mask_tree)
    params = optax.apply_updates(ts.params, updates)
    return ts.replace(params=params, opt_state=opt_state), info


def update_epochs(
    cfg: StudyConfig, cell: CellParams, ts: TrainState, traj: Transition, advantages, targets
) -> tuple[TrainState, dict]:
    """Run update_epochs passes of shuffled minibatch SGD over the collected batch."""
    batch_size, n_mb = cfg.ppo.batch_size, cfg.ppo.num_minibatches
    flat = jax.tree_util.tree_map(lambda x: x.reshape(batch_size, *x.shape[2:]), (traj, advantages, targets))

    def epoch(ts, _):
        key, perm_key = jax.random.split(ts.key)
        perm = jax.random.permutation(perm_key, batch_size)
        shuffled = jax.tree_util.tree_map(lambda x: x[perm].reshape(n_mb, -1, *x.shape[1:]), flat)
        ts, info = jax.lax.scan(functools.partial(sgd_step, cfg, cell), ts.replace(key=key), shuffled)
        return ts, info

    ts, info = jax.lax.scan(epoch, ts, None, cfg.ppo.update_epochs)
    return ts, jax.tree_util.tree_map(jnp.mean, info)


def prune_step(cfg: StudyConfig, cell: CellParams, ts: TrainState) -> tuple[TrainState, dict]:
    """Recompute the masks for the scheduled sparsity, then zero pruned weights and their Adam moments.

    The cell's traced method, allocation and cap pick the masks (`compute_masks`); the critic gets its own
    masks, same target and method, when prune.prune_critic. Returns the state and the metrics
    `sparsity_target` (scheduled) and `sparsity_achieved` (policy masks) after this update.
    """
    target = scheduled_sparsity(cell.schedule, ts.update)
    if not cfg.prune.enabled:
        return ts, {"sparsity_target": target, "sparsity_achieved": jnp.zeros_like(target)}
    num_hidden = len(cfg.network.hidden_sizes)
    masks = compute_masks(mean_kernels(ts.params["policy"], num_hidden), ts.masks, target, cell.masks, salt=0)
    params = {**ts.params, "policy": apply_masks(ts.params["policy"], masks)}
    critic_masks = ts.critic_masks
    if cfg.prune.prune_critic:
        kernels = critic_kernels(ts.params["critic"], num_hidden)
        critic_masks = compute_masks(kernels, ts.critic_masks, target, cell.masks, salt=1)
        params["critic"] = apply_critic_masks(params["critic"], critic_masks)

    mask_tree = full_mask_tree(params, masks, critic_masks)
    opt_state = zero_pruned_moments(make_optimizer(cfg), ts.opt_state, mask_tree)
    ts = ts.replace(params=params, opt_state=opt_state, masks=masks, critic_masks=critic_masks)
    return ts, {"sparsity_target": target, "sparsity_achieved": achieved_sparsity(masks)}


def train_update(cfg: StudyConfig, cell: CellParams, ts: TrainState, _=None, env=None) -> tuple[TrainState, dict]:
    """One PPO update: collect, advantages, SGD, normalizer, pruning. `env` as in `collect`.

    Cells of the "adversarial" robust method collect with attacked observations (`robust.adversarial_collect`).
    """
    if robust.program_method(cfg) == "adversarial":
        ts, traj, metrics = robust.adversarial_collect(cfg, cell.robust, ts, env)
    else:
        ts, traj, metrics = collect(cfg, ts, env)

    _, critic = make_networks(cfg, traj.action.shape[-1])
    last_value = critic.apply(ts.params["critic"], ts.normalizer.normalize(ts.env_state.obs))
    advantages, targets = compute_gae(cfg, traj, last_value)

    ts, losses = update_epochs(cfg, cell, ts, traj, advantages, targets)

    ts = ts.replace(normalizer=ts.normalizer.update(traj.raw_obs))
    ts, sparsity = prune_step(cfg, cell, ts)
    ts = ts.replace(update=ts.update + 1)
    return ts, {**metrics, **losses, **sparsity}


def train(cfg: StudyConfig, cell: CellParams, env=None) -> tuple[TrainState, dict]:
    """Train one cell for cfg.ppo.num_updates updates. Metrics have shape [num_updates].

    `jax.vmap(functools.partial(train, cfg))(cells)` trains a grid of cells in one program. `env` as in
    `collect`: the learned adversaries pass their own MDP here.
    """
    TRACE_COUNT["train"] += 1
    ts = init_train_state(cfg, cell, env)
    return jax.lax.scan(functools.partial(train_update, cfg, cell, env=env), ts, None, cfg.ppo.num_updates)

