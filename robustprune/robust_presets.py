"""Presets of the robust-training baselines and of categorical policies, sized for a 2-core CPU.

- `robust-cpu`: inverted_pendulum, {vanilla, SA-PPO} × sparsity {0, 0.8} × 5 seeds, so pruning and SA-PPO are
  compared alone and combined under the gradient attacks (random, critic, MAD).
- `categorical-cpu`: CartPole with a two-bin categorical policy (push left / right), {vanilla, SA-PPO} ×
  sparsity {0, 0.8} × 2 seeds, evaluated with the argmax action, attacked and certified end to end.
"""

from __future__ import annotations

import dataclasses

from robustprune.config import (
    EnvConfig,
    EvalConfig,
    NetworkConfig,
    PPOConfig,
    PruneConfig,
    RobustConfig,
    StudyConfig,
)

GRADIENT_ATTACKS = ("none", "random", "critic", "mad")
DEPARTURE = (
    "CPU preset: {episode_length}-step episodes instead of 1000, {episodes} evaluation episodes instead of 50, "
    "{seeds} seeds instead of 15 or more, and only the random, critic and MAD attacks (no Robust Sarsa, SA-RL "
    "or PA-AD), so worst cases are optimistic. SA-PPO uses PGD ({steps} steps) for its inner maximum."
)


def _with_note(cfg: StudyConfig) -> StudyConfig:
    note = DEPARTURE.format(episode_length=cfg.eval.episode_length, episodes=cfg.eval.episodes,
                            seeds=len(cfg.seeds), steps=cfg.robust.sa_steps)
    return dataclasses.replace(cfg, notes=note)


def robust_cpu() -> StudyConfig:
    """Build vanilla PPO and SA-PPO cells, dense and 80% gradually pruned, on inverted_pendulum."""
    cfg = StudyConfig(
        name="robust-cpu",
        env=EnvConfig(name="inverted_pendulum", backend="spring", episode_length=200),
        ppo=PPOConfig(num_envs=64, unroll_length=32, num_updates=100),
        prune=PruneConfig(sparsities=(0.0, 0.8)),
        eval=EvalConfig(episodes=8, episode_length=200, eps=(0.0, 0.1, 0.2, 0.4, 0.8), attacks=GRADIENT_ATTACKS),
        robust=RobustConfig(methods=("vanilla", "sa_ppo"), kappas=(0.3,), train_eps=(0.2,)),
        seeds=(0, 1, 2, 3, 4),
    )
    return _with_note(cfg)


def categorical_cpu() -> StudyConfig:
    """Build a two-bin categorical policy on CartPole, vanilla and SA-PPO, dense and 80% pruned."""
    cfg = StudyConfig(
        name="categorical-cpu",
        env=EnvConfig(name="cartpole", episode_length=200),
        network=NetworkConfig(policy="categorical", n_bins=2),
        ppo=PPOConfig(num_envs=32, unroll_length=32, num_updates=60),
        prune=PruneConfig(sparsities=(0.0, 0.8)),
        eval=EvalConfig(episodes=8, episode_length=200, eps=(0.0, 0.1, 0.2, 0.4), attacks=GRADIENT_ATTACKS),
        robust=RobustConfig(methods=("vanilla", "sa_ppo"), kappas=(0.3,), train_eps=(0.2,)),
        seeds=(0, 1),
    )
    return _with_note(cfg)
