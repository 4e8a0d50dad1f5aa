"""Shared helpers of the grid benchmarks: configs, hardware and version records, JSON output."""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from pathlib import Path

import jax

from robustprune.presets import get_preset
from robustprune.results import package_versions

OUT_DIR = Path(__file__).resolve().parent.parent / "results" / "benchmarks"


def bench_config(env: str = "point_mass", num_updates: int = 10, num_envs: int = 16, unroll: int = 32):
    """A training-only config: one sparsity per cell, the smoke preset's PPO shapes scaled by the arguments."""
    cfg = get_preset("smoke")
    return dataclasses.replace(
        cfg,
        env=dataclasses.replace(cfg.env, name=env, episode_length=200 if env != "point_mass" else 50),
        ppo=dataclasses.replace(cfg.ppo, num_envs=num_envs, unroll_length=unroll, num_updates=num_updates,
                                num_minibatches=4),
        prune=dataclasses.replace(cfg.prune, sparsities=(0.5,)),
    )


def record(name: str, data: dict) -> Path:
    """Write results/benchmarks/<name>.json with the command, hardware and package versions."""
    data = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": __import__("os").cpu_count(),
                     "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()]},
        "versions": package_versions(),
        **data,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(json.dumps(data.get("results", data), indent=2))
    return path
