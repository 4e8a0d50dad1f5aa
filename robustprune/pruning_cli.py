"""`robustprune run` options that sweep the pruning grid: sparsity × schedule × method × allocation × seed."""

from __future__ import annotations

import argparse
import dataclasses

from robustprune.config import ConfigError, StudyConfig


def add_pruning_options(run: argparse.ArgumentParser) -> None:
    """Add the pruning-grid options to the `run` parser (each overrides the preset's value)."""
    group = run.add_argument_group("pruning grid (comma-separated lists override the preset)")
    group.add_argument("--sparsities", default=None, metavar="S,S,...",
                       help="target sparsities in [0, 1), e.g. 0,0.5,0.8,0.95")
    group.add_argument("--schedules", default=None, metavar="NAME,...",
                       help="gradual, one_shot, micro, post_training")
    group.add_argument("--methods", default=None, metavar="NAME,...", help="magnitude, random")
    group.add_argument("--allocations", default=None, metavar="NAME,...", help="global, uniform, erk")
    group.add_argument("--micro-increment", type=float, default=None, metavar="F",
                       help="sparsity added per micro-pruning step (every prune.micro_period updates)")
    group.add_argument("--max-sparsity-first-last", type=float, default=None, metavar="F",
                       help="cap on the sparsity of the first and last policy layers (1: no cap, 0: dense)")
    group.add_argument("--prune-critic", action="store_true", help="also prune the critic's kernels")


def _names(option: str, text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise ConfigError(f"{option}={text!r} is empty: give a comma-separated list, e.g. {option} a,b.")
    return values


def _floats(option: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in _names(option, text))
    except ValueError:
        raise ConfigError(f"{option}={text!r} is not a comma-separated list of numbers, e.g. {option} 0,0.5,0.9.")


def apply_pruning_options(cfg: StudyConfig, args: argparse.Namespace) -> StudyConfig:
    """The config with every given pruning option applied (validation is left to the caller)."""
    changes = {}
    if getattr(args, "sparsities", None) is not None:
        changes["sparsities"] = _floats("--sparsities", args.sparsities)
    for name in ("schedules", "methods", "allocations"):
        if getattr(args, name, None) is not None:
            changes[name] = _names(f"--{name}", getattr(args, name))
    if getattr(args, "micro_increment", None) is not None:
        changes["micro_increment"] = args.micro_increment
    if getattr(args, "max_sparsity_first_last", None) is not None:
        changes["max_sparsity_first_last"] = args.max_sparsity_first_last
    if getattr(args, "prune_critic", False):
        changes["prune_critic"] = True
    return dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **changes)) if changes else cfg
