"""Size and estimated cost of a study, for `robustprune list` and for sizing presets.

The estimate is env steps divided by a measured or estimated throughput on the 2-core development CPU, plus
a fixed compile time. Throughputs (env steps per second while training a vmapped grid):
- inverted_pendulum (spring): 104k steps/s, measured by the `default` preset (12 cells × 204,800 steps in
  23.6 s of training run time, jax 0.10.2, 2 CPU cores).
- hopper: raw stepping at batch 128 measured 49k steps/s (spring) on the same machine; training keeps about
  85% of raw stepping on inverted_pendulum (104k of 123k), so 42k. Positional: 23k, measured by the
  `hopper-cpu` preset (6 cells × 2.0M steps in 514 s of training run time).
- other Brax environments: NOTE: not measured; scaled from hopper by body count (walker2d ×0.8,
  halfcheetah ×0.7, ant ×0.45, humanoid ×0.2). Treat those estimates as order-of-magnitude only.
Evaluation steps are charged at the same rate, times `ATTACK_COST` for PGD attacks (gradient steps per env step).
Learned adversaries (SA-RL, PA-AD) are PPO runs of their own, one per cell × ε > 0 × learning rate, charged at
the training rate: `hopper-cpu` trained 24 of them (12.3M steps) in 469 s and 475 s, slightly above it.
"""

from __future__ import annotations

import dataclasses

from robustprune.config import StudyConfig

TRAIN_STEPS_PER_S = {
    ("inverted_pendulum", "spring"): 104e3,
    ("hopper", "spring"): 42e3,
    ("hopper", "positional"): 23e3,
    ("point_mass", "spring"): 400e3,
}
RELATIVE_TO_HOPPER = {"walker2d": 0.8, "halfcheetah": 0.7, "ant": 0.45, "humanoid": 0.2}
BACKEND_FACTOR = {"spring": 1.0, "positional": 23.0 / 42.0, "generalized": 0.15, "mjx": 0.1}
COMPILE_S = {"point_mass": 10.0, "inverted_pendulum": 50.0, "hopper": 120.0}
DEFAULT_COMPILE_S = 200.0
ATTACK_COST = {"none": 1.0, "random": 1.0}  # every other attack runs PGD: charged 1 + pgd_steps / 4


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """Cells, training, adversary-training and evaluation env steps, and the estimated seconds on 2 CPU cores."""

    cells: int
    train_env_steps: int
    eval_env_steps: int
    adversary_env_steps: int
    seconds_2cpu: float
    measured: bool  # True when the throughput of this env and backend was measured, not scaled

    def describe(self) -> str:
        hours = self.seconds_2cpu / 3600
        when = f"{self.seconds_2cpu / 60:.0f} min" if hours < 1 else f"{hours:.1f} h"
        adversary = f" adversary_env_steps={self.adversary_env_steps:.3g}" if self.adversary_env_steps else ""
        return (f"cells={self.cells} train_env_steps={self.train_env_steps:.3g}{adversary} "
                f"eval_env_steps={self.eval_env_steps:.3g} est. 2-CPU time≈{when}"
                f"{'' if self.measured else ' (unmeasured env: rough)'}")


def throughput(env: str, backend: str) -> tuple[float, bool]:
    """Training env steps per second on 2 CPU cores for an env and backend, and whether it was measured."""
    if (env, backend) in TRAIN_STEPS_PER_S:
        return TRAIN_STEPS_PER_S[(env, backend)], True
    hopper_spring = TRAIN_STEPS_PER_S[("hopper", "spring")]
    return hopper_spring * RELATIVE_TO_HOPPER.get(env, 0.5) * BACKEND_FACTOR.get(backend, 0.2), False


def estimate_cost(cfg: StudyConfig) -> CostEstimate:
    """Estimate a study's size and run time on the 2-core development CPU (see the module doc)."""
    rate, measured = throughput(cfg.env.name, cfg.env.backend)
    train_steps = cfg.num_cells * cfg.ppo.env_steps * cfg.env.action_repeat
    episode_steps = cfg.num_cells * cfg.eval.episodes * cfg.eval.episode_length * cfg.env.action_repeat
    weighted, eval_steps = 0.0, 0
    for attack in cfg.eval.attacks:
        count = 1 if attack == "none" else len(cfg.eval.eps)
        eval_steps += count * episode_steps
        weighted += count * episode_steps * ATTACK_COST.get(attack, 1.0 + cfg.eval.pgd_steps / 4)
    compile_s = COMPILE_S.get(cfg.env.name, DEFAULT_COMPILE_S) * (1 + len(cfg.eval.attacks)) / 2
    adversary_steps = adversary_env_steps(cfg)
    seconds = (train_steps + adversary_steps + weighted) / rate + compile_s
    return CostEstimate(cfg.num_cells, train_steps, eval_steps, adversary_steps, seconds, measured)


def adversary_env_steps(cfg: StudyConfig) -> int:
    """Count the env steps of training the SA-RL and PA-AD adversaries: per kind, cells × ε > 0 × learning rates."""
    a = cfg.attack
    kinds = {"sa_rl", "pa_ad"} & set(cfg.eval.attacks)
    eps = sum(1 for e in cfg.eval.eps if e > 0) or len(cfg.eval.eps)
    per_adversary = a.adv_num_envs * a.adv_unroll_length * a.adv_num_updates * cfg.env.action_repeat
    return len(kinds) * cfg.num_cells * eps * len(a.adv_learning_rates) * per_adversary
