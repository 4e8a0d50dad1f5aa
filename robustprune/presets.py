"""Named study presets.

`default` trains on 2 CPU cores in minutes. It departs from the standard protocol (1000-step episodes,
50 evaluation episodes, 15+ seeds) on purpose, and `run.json` records that departure.
"""

from __future__ import annotations

import dataclasses

from robustprune.config import ConfigError, EnvConfig, EvalConfig, PPOConfig, PruneConfig, StudyConfig, _suggest

PROTOCOL_DEPARTURE = (
    "Short-horizon CPU preset: {episode_length}-step episodes instead of the protocol's 1000, "
    "{episodes} evaluation episodes instead of 50, and {seeds} seeds instead of 15 or more."
)


def _default() -> StudyConfig:
    cfg = StudyConfig(
        name="default",
        env=EnvConfig(name="inverted_pendulum", backend="spring", episode_length=200),
        ppo=PPOConfig(num_envs=64, unroll_length=32, num_updates=100),
        prune=PruneConfig(sparsities=(0.0, 0.5, 0.8, 0.95), schedule="gradual"),
        eval=EvalConfig(
            episodes=16, episode_length=200, eps=(0.0, 0.1, 0.2, 0.4, 0.8), attacks=("none", "random", "mad")
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


def _with_departure(cfg: StudyConfig) -> StudyConfig:
    note = PROTOCOL_DEPARTURE.format(
        episode_length=cfg.eval.episode_length, episodes=cfg.eval.episodes, seeds=len(cfg.seeds)
    )
    return dataclasses.replace(cfg, notes=note)


PRESETS = {"default": _default, "smoke": _smoke}


def get_preset(name: str) -> StudyConfig:
    """Return a preset's config by name. Raises ConfigError with close matches for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(
            f"preset={name!r} is not a known preset. Available presets: {', '.join(sorted(PRESETS))}."
            + _suggest(name, PRESETS)
        )
    return PRESETS[name]()
