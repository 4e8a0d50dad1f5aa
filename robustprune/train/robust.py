"""Robust-training baselines that combine with every pruning schedule: SA-PPO, adversarial rollouts and a
Lipschitz (certified-training) penalty.

The method is static (`cfg.robust.methods`, one per compiled program); κ and the training radius ε are traced
per-cell fields (`RobustParams`), so one program batches a κ × ε × sparsity × seed grid. The radius ramps
linearly from 0 to ε over training (`training_eps`), as SA-PPO's schedule does.

- "sa_ppo" (Zhang et al., 2020, "Robust Deep Reinforcement Learning against Adversarial Perturbations on State
  Observations"): the PPO loss plus κ · mean_s max_{ŝ ∈ B(s, ε)} KL(π(·|s) ‖ π(·|ŝ)). The inner maximum is
  found by PGD (SGLD when `sa_langevin_beta` > 0) on the frozen minibatch parameters; the penalty is then
  taken at the found ŝ with the clean distribution held fixed, so its gradient pulls π(·|ŝ) towards π(·|s).
- "adversarial": training rollouts in which the policy acts on observations perturbed by `rollout_attack`
  (random, critic or MAD against the current policy) at the ramped ε; dynamics and rewards use the true state.
  NOTE: an ATLA-style learned adversary trained in alternation with the agent is not implemented.
- "lipschitz": the PPO loss plus κ · ε·L/2, with L the global monotone bound `lipschitz_bound` of the masked
  policy network (`robustprune.certify`): for a Gaussian, L bounds x ↦ Σ^{-1/2}μ(x) into ℓ2 and 2Φ(εL/2) − 1 ≤
  εL/2 bounds its TV; for a categorical policy, εL_d/2 bounds each factor's TV and the sum is taken. So the
  penalty is a first-order certified TV bound, which keeps a gradient where the TV bound itself saturates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from robustprune.config import ConfigError, StudyConfig


@struct.dataclass
class RobustParams:
    """Per-cell traced robust-training settings: κ [] (penalty weight) and ε [] (final training radius)."""

    kappa: jax.Array
    eps: jax.Array


def make_robust_params(kappa: float, eps: float) -> RobustParams:
    return RobustParams(kappa=jnp.asarray(float(kappa)), eps=jnp.asarray(float(eps)))


def program_method(cfg: StudyConfig) -> str:
    """Return the one robust-training method of a program's config. Raises ConfigError when several are listed."""
    methods = cfg.robust.methods
    if len(methods) != 1:
        raise ConfigError(
            f"robust.methods={methods!r} lists several methods, but a training program runs one (the method is "
            "static). Train each method with its own config, e.g. via robustprune.cell_groups.network_groups."
        )
    return methods[0]


def training_eps(cfg: StudyConfig, robust: RobustParams, update: jax.Array) -> jax.Array:
    """Compute the training radius at `update`: 0 before eps_start_frac of training, ε after eps_end_frac, linear between."""
    r = cfg.robust
    progress = update / cfg.ppo.num_updates
    width = r.eps_end_frac - r.eps_start_frac
    if width > 0:
        ramp = jnp.clip((progress - r.eps_start_frac) / width, 0.0, 1.0)
    else:
        ramp = (progress >= r.eps_start_frac).astype(robust.eps.dtype)
    return robust.eps * ramp


def _policy_dist(cfg: StudyConfig, action_size: int):
    """(dist_fn(policy_params, obs) → distribution parameters, PolicyHead) of the config's policy."""
    from robustprune.policies import make_policy, policy_head

    policy, head = make_policy(cfg.network, action_size), policy_head(cfg.network, action_size)
    return (lambda params, obs: head.dist(policy.apply(params, obs))), head


def sa_ppo_kl(cfg: StudyConfig, policy_params: dict, obs: jax.Array, eps: jax.Array, key: jax.Array,
              action_size: int) -> jax.Array:
    """max_{ŝ ∈ B(s, ε)} KL(π(·|s) ‖ π(·|ŝ)) per row, by PGD: obs [n, obs] → [n].

    The ball is the evaluation's norm in normalized units. ŝ is searched on stopped-gradient parameters; the
    returned KL is differentiable in `policy_params` through π(·|ŝ) only (π(·|s) is held fixed). Zero at ε = 0.
    """
    from robustprune.attacks import pgd_maximize

    dist_fn, head = _policy_dist(cfg, action_size)
    clean = jax.lax.stop_gradient(dist_fn(policy_params, obs))
    frozen = jax.lax.stop_gradient(policy_params)
    r = cfg.robust
    worst = pgd_maximize(lambda x: head.kl(clean, dist_fn(frozen, x)), obs, key, eps, norm=cfg.eval.norm,
                         steps=r.sa_steps, step_size=r.sa_step_frac * eps, langevin_beta=r.sa_langevin_beta)
    return head.kl(clean, dist_fn(policy_params, jax.lax.stop_gradient(worst)))


def lipschitz_tv_surrogate(cfg: StudyConfig, policy_params: dict, eps: jax.Array) -> jax.Array:
    """ε·L/2 summed over action factors, with L = cfg.robust.lipschitz_bound of the masked policy network: [].

    An upper bound on the worst TV within the ε-ball at every state (before capping at 1).
    """
    from robustprune.certify import categorical_lipschitz_bounds, gaussian_lipschitz_bounds
    from robustprune.networks import mean_kernels

    net, name = cfg.network, cfg.robust.lipschitz_bound
    kernels = mean_kernels(policy_params, len(net.hidden_sizes))
    if net.policy == "categorical":
        lipschitz = categorical_lipschitz_bounds(kernels, activation=net.activation, norm=cfg.eval.norm,
                                                 n_bins=net.n_bins, names=[name])[name]
        return 0.5 * eps * jnp.sum(lipschitz)
    log_std = policy_params["params"]["log_std"]
    lipschitz = gaussian_lipschitz_bounds(kernels, log_std, activation=net.activation, norm=cfg.eval.norm,
                                          names=[name])[name]
    return 0.5 * eps * lipschitz


def robust_penalty(cfg: StudyConfig, robust: RobustParams, update: jax.Array, params: dict, obs: jax.Array,
                   key: jax.Array, action_size: int) -> tuple[jax.Array, dict]:
    """Compute the method's loss term κ·R for one minibatch of normalized observations obs [n, obs].

    Returns (penalty [], {"robust_penalty": R, "train_eps": ε_t}); the penalty is 0 for vanilla and adversarial.
    """
    method = program_method(cfg)
    eps = training_eps(cfg, robust, update)
    if method == "sa_ppo":
        value = jnp.mean(sa_ppo_kl(cfg, params["policy"], obs, eps, key, action_size))
    elif method == "lipschitz":
        value = lipschitz_tv_surrogate(cfg, params["policy"], eps)
    else:
        value = jnp.zeros(())
    return robust.kappa * value, {"robust_penalty": value, "train_eps": eps}


def needs_penalty(cfg: StudyConfig) -> bool:
    return program_method(cfg) in ("sa_ppo", "lipschitz")


def adversarial_collect(cfg: StudyConfig, robust: RobustParams, ts, env):
    """`collect` with the policy acting on observations attacked by cfg.robust.rollout_attack at the ramped ε.

    Rewards, dynamics and the normalizer's statistics use the true state; the stored `Transition.obs` (what
    PPO trains on) is the perturbed observation the policy acted on. Returns (TrainState, Transition, metrics).
    """
    from robustprune.attacks.training import collect_under_attack

    eps = training_eps(cfg, robust, ts.update)
    return collect_under_attack(cfg, ts, cfg.robust.rollout_attack, eps, env)
