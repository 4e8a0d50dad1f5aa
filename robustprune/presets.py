"""Named study presets.

`default` trains on 2 CPU cores in minutes. It departs from the standard protocol (1000-step episodes,
50 evaluation episodes, 15+ seeds) on purpose, and `run.json` records that departure.
"""

from __future__ import annotations

import dataclasses
import math

from robustprune.config import (AttackConfig, ConfigError, EnvConfig, EvalConfig, PPOConfig, PruneConfig, StudyConfig,
                                _suggest)

PROTOCOL_DEPARTURE = (
    "Short-horizon CPU preset: {episode_length}-step episodes instead of the protocol's 1000, "
    "{episodes} evaluation episodes instead of 50, and {seeds} seeds instead of 15 or more."
)


# The six published attacks (RS+MAD alongside RS). Their learned parts use AttackConfig's CPU budgets: 16k
# Sarsa steps and 4 Q-functions per cell, 41k env steps and 2 learning rates per adversary, cell and ε.
FULL_SUITE = ("none", "random", "critic", "mad", "robust_sarsa", "rs_mad", "sa_rl", "pa_ad")


def _default() -> StudyConfig:
    cfg = StudyConfig(
        name="default",
        env=EnvConfig(name="inverted_pendulum", backend="spring", episode_length=200),
        ppo=PPOConfig(num_envs=64, unroll_length=32, num_updates=100),
        prune=PruneConfig(sparsities=(0.0, 0.5, 0.8, 0.95), schedules=("gradual",)),
        eval=EvalConfig(
            episodes=16, episode_length=200, eps=(0.0, 0.1, 0.2, 0.4, 0.8), attacks=FULL_SUITE
        ),
        seeds=(0, 1, 2),
    )
    return _with_departure(cfg)


def _smoke() -> StudyConfig:
    """Build a seconds-long study on the point-mass toy environment, for tests and quick checks."""
    cfg = StudyConfig(
        name="smoke",
        env=EnvConfig(name="point_mass", episode_length=50),
        ppo=PPOConfig(num_envs=8, unroll_length=16, num_updates=6, update_epochs=2, num_minibatches=2),
        prune=PruneConfig(sparsities=(0.0, 0.5), start_frac=0.0, end_frac=0.5, update_period=1),
        eval=EvalConfig(episodes=2, episode_length=50, eps=(0.0, 0.3), attacks=("none", "random", "mad")),
        seeds=(0, 1),
    )
    return _with_departure(cfg)


def _schedules() -> StudyConfig:
    """Pruning schedules and methods compared on inverted_pendulum (default's training), in minutes on CPU.

    Gradual, micro and one-shot schedules, each with magnitude and random (control) scores, at 4 sparsities and
    2 seeds, with one global ranking whose first and last layers are capped at 0.8 sparsity (uncapped, 95%
    can prune the whole 64-weight output layer). A cheap attack set keeps evaluation short.
    """
    cfg = StudyConfig(
        name="schedules",
        env=EnvConfig(name="inverted_pendulum", backend="spring", episode_length=200),
        ppo=PPOConfig(num_envs=64, unroll_length=32, num_updates=100),
        prune=PruneConfig(sparsities=(0.0, 0.5, 0.8, 0.9, 0.95), schedules=("gradual", "micro", "one_shot"),
                          methods=("magnitude", "random"), micro_increment=0.02, micro_period=1,
                          max_sparsity_first_last=0.8),
        eval=EvalConfig(episodes=8, episode_length=200, eps=(0.0, 0.1, 0.2, 0.4), attacks=("none", "random", "mad")),
        seeds=(0, 1),
    )
    return _with_departure(cfg)


def _with_departure(cfg: StudyConfig) -> StudyConfig:
    note = PROTOCOL_DEPARTURE.format(
        episode_length=cfg.eval.episode_length, episodes=cfg.eval.episodes, seeds=len(cfg.seeds)
    )
    return dataclasses.replace(cfg, notes=note)


# Brax locomotion presets (protocol sizes). The standard ε is SA_PPO's `robust_ppo_eps` per environment.
# reward_per_step_max is an estimate of max |r| per step (these rewards are not bounded by construction);
# value-gap bounds that use it hold only while rewards stay within it.
# NOTE: the positional backend was chosen for contact fidelity; these presets have not been trained here.
STANDARD_EPS = {"hopper": 0.075, "walker2d": 0.05, "halfcheetah": 0.15, "ant": 0.15, "humanoid": 0.075}
REWARD_BOUND = {"hopper": 5.0, "walker2d": 8.0, "halfcheetah": 12.0, "ant": 8.0, "humanoid": 12.0}
EPS_MULTIPLES = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
PROTOCOL_SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
BRAX_NOTE = (
    "Brax {backend} backend; PPO with {num_envs} envs × {unroll} steps per update (batch {batch}, as SA_PPO's "
    "T = 2048), {epochs} epochs, {minibatches} minibatches, {steps:.3g} env steps per cell. {attack_note}"
)
SARSA_RADIUS_MULTIPLES = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)  # times the env's standard ε: 6 radii, as in the protocol
SARSA_WEIGHTS = (0.03, 0.1, 0.3, 1.0, 3.0)  # 5 penalty weights, as in the protocol, but the values are ours
ADVERSARY_STEPS = {"ant": 5_000_000}  # protocol: about 1M env steps per adversary, 5M on ant


def protocol_attack_config(env: str) -> AttackConfig:
    """Return the published attack budgets for a locomotion env, except the adversary scan (3 learning rates).

    Robust Sarsa: about 60k on-policy env steps (128 envs × 469 steps) and 6 × 5 Q-functions. SA-RL and PA-AD:
    PPO adversaries of about 1M env steps (5M on ant) with the victim's PPO epochs and minibatches. The
    published scan of about 216 settings per victim is cut to 3 learning rates, so worst cases are optimistic.
    """
    envs, unroll = 64, 32  # 2048 env steps per adversary update, as the victim's PPO
    updates = math.ceil(ADVERSARY_STEPS.get(env, 1_000_000) / (envs * unroll))
    return AttackConfig(
        rs_num_envs=128, rs_unroll_length=469, rs_num_minibatches=32,
        rs_radii=tuple(round(m * STANDARD_EPS[env], 6) for m in SARSA_RADIUS_MULTIPLES), rs_weights=SARSA_WEIGHTS,
        adv_num_envs=envs, adv_unroll_length=unroll, adv_num_updates=updates, adv_update_epochs=10,
        adv_num_minibatches=32, adv_learning_rates=(1e-4, 3e-4, 1e-3),
    )


def _brax(env: str, updates: int, *, seeds: int = 15) -> StudyConfig:
    """A protocol-sized study of one Brax locomotion environment (see the constants above)."""
    eps = tuple(round(m * STANDARD_EPS[env], 6) for m in EPS_MULTIPLES)
    cfg = StudyConfig(
        name=env,
        env=EnvConfig(name=env, backend="positional", episode_length=1000, reward_per_step_max=REWARD_BOUND[env]),
        ppo=PPOConfig(num_envs=128, unroll_length=16, num_updates=updates, update_epochs=10, num_minibatches=32),
        prune=PruneConfig(sparsities=PROTOCOL_SPARSITIES),
        eval=EvalConfig(episodes=50, episode_length=1000, eps=eps, attacks=FULL_SUITE),
        attack=protocol_attack_config(env),
        seeds=tuple(range(seeds)),
    )
    return _with_brax_note(cfg)


def _attack_note(cfg: StudyConfig) -> str:
    a = cfg.attack
    if not {"robust_sarsa", "sa_rl", "pa_ad"} <= set(cfg.eval.attacks):
        return (f"Attack suite {cfg.eval.attacks}: weaker than the published suite (it lacks Robust Sarsa, SA-RL "
                "or PA-AD), so worst cases are optimistic.")
    return (f"Whole attack suite. Robust Sarsa: {a.rs_num_envs * a.rs_unroll_length} env steps per cell and "
            f"{len(a.rs_radii)} × {len(a.rs_weights)} Q-functions. SA-RL and PA-AD: "
            f"{a.adv_num_envs * a.adv_unroll_length * a.adv_num_updates:.3g} env steps per adversary with a scan of "
            f"{len(a.adv_learning_rates)} learning rates, against about 216 published settings, so worst cases are "
            "optimistic.")


def _with_brax_note(cfg: StudyConfig) -> StudyConfig:
    note = BRAX_NOTE.format(backend=cfg.env.backend, num_envs=cfg.ppo.num_envs, unroll=cfg.ppo.unroll_length,
                            batch=cfg.ppo.batch_size, epochs=cfg.ppo.update_epochs,
                            minibatches=cfg.ppo.num_minibatches, steps=cfg.ppo.env_steps,
                            attack_note=_attack_note(cfg))
    return dataclasses.replace(cfg, notes=note)


def _hopper_quick() -> StudyConfig:
    """Hopper sized for a 2-core CPU in under 30 minutes (`robustprune list` prints the estimate)."""
    eps = tuple(round(m * STANDARD_EPS["hopper"], 6) for m in (0.0, 1.0, 2.0))
    cfg = StudyConfig(
        name="hopper-quick",
        env=EnvConfig(name="hopper", backend="spring", episode_length=1000, reward_per_step_max=REWARD_BOUND["hopper"]),
        ppo=PPOConfig(num_envs=64, unroll_length=32, num_updates=300, update_epochs=4, num_minibatches=8),
        prune=PruneConfig(sparsities=(0.0, 0.5, 0.8, 0.95)),
        eval=EvalConfig(episodes=8, episode_length=1000, eps=eps, attacks=("none", "random", "critic", "mad")),
        seeds=(0, 1, 2),
    )
    cfg = _with_brax_note(cfg)
    departure = (" Quick CPU preset: 8 evaluation episodes instead of 50, 3 seeds instead of 15 or more, 4 sparsities, "
                 "ε of 0, 1 and 2 × 0.075, and 0.61M env steps per cell instead of about 2M.")
    return dataclasses.replace(cfg, notes=cfg.notes + departure)


def _hopper_cpu() -> StudyConfig:
    """Build a hopper study whose policies hop, attacked by the whole suite, in about 35 minutes on 2 cores.

    With the spring backend, PPO's deterministic hopper policies dove forward and fell within 300 steps at
    1.2M env steps, with or without the entropy bonus (without it the learned std fell to about 0.15). The
    positional backend with the bonus hops. Positional without the bonus was not tried. Each learned
    adversary gets half the published 1M env steps.
    """
    eps = (0.0, STANDARD_EPS["hopper"], 2 * STANDARD_EPS["hopper"])
    cfg = StudyConfig(
        name="hopper-cpu",
        env=EnvConfig(name="hopper", backend="positional", episode_length=1000,
                      reward_per_step_max=REWARD_BOUND["hopper"]),
        ppo=PPOConfig(num_envs=128, unroll_length=16, num_updates=977, update_epochs=10, num_minibatches=32,
                      entropy_coef=0.01),
        prune=PruneConfig(sparsities=(0.0, 0.8)),
        eval=EvalConfig(episodes=16, episode_length=1000, eps=eps, attacks=FULL_SUITE),
        attack=AttackConfig(adv_num_envs=64, adv_unroll_length=32, adv_num_updates=250, rs_num_envs=64,
                            rs_unroll_length=512, rs_num_minibatches=32),
        seeds=(0, 1, 2),
    )
    note = (f"Brax positional backend; PPO with 128 envs × 16 steps per update (batch 2048, as SA_PPO's T = 2048), "
            f"10 epochs, 32 minibatches, entropy bonus 0.01, {cfg.ppo.env_steps / 1e6:.2f}M env steps per cell "
            "as SA_PPO. Departures for a 2-core CPU: 16 evaluation episodes instead of 50, 3 seeds instead "
            "of 15 or more, sparsities 0 and 0.8 only. Attack budgets: Robust Sarsa 33k env steps per cell and "
            "2 × 2 Q-functions (published: 60k and 6 × 5); each SA-RL and PA-AD adversary 512k env steps with a "
            "scan of 2 learning rates (published: about 1M steps and about 216 settings).")
    return dataclasses.replace(cfg, notes=note)


PRESETS = {
    "default": _default,
    "smoke": _smoke,
    "schedules": _schedules,
    "hopper": lambda: _brax("hopper", 977),  # 2.0M env steps per cell, as SA_PPO
    "walker2d": lambda: _brax("walker2d", 977),
    "halfcheetah": lambda: _brax("halfcheetah", 977),
    "ant": lambda: _brax("ant", 4883),  # 10M env steps per cell
    "humanoid": lambda: _brax("humanoid", 4883),
    "hopper-quick": _hopper_quick,
    "hopper-cpu": _hopper_cpu,
    "robust-cpu": lambda: _robust_presets().robust_cpu(),
    "categorical-cpu": lambda: _robust_presets().categorical_cpu(),
}


def _robust_presets():
    from robustprune import robust_presets

    return robust_presets


def get_preset(name: str) -> StudyConfig:
    """Return a preset's config by name. Raises ConfigError with close matches for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(
            f"preset={name!r} is not a known preset. Available presets: {', '.join(sorted(PRESETS))}."
            + _suggest(name, PRESETS)
        )
    return PRESETS[name]()
