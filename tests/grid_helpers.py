"""Shared tiny grid for the reliability, resume and sharding tests (point_mass, 6 cells, 6 updates)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from robustprune.presets import get_preset

CHECKPOINT_EVERY = 3  # every test run uses it, so all share one segment program (3 updates per call)
TABLES = ("cells", "evaluations", "certificates")
# Per-cell results may differ across chunk sizes and device counts only by float32 reassociation in XLA's
# batched kernels; after 6 PPO updates that stays far below this relative tolerance.
CROSS_SHAPE_RTOL = 1e-3


def tiny_config():
    cfg = get_preset("smoke")
    return dataclasses.replace(
        cfg,
        name="tiny",
        prune=dataclasses.replace(cfg.prune, sparsities=(0.0, 0.5)),
        eval=dataclasses.replace(cfg.eval, attacks=("none", "random")),
        seeds=(0, 1, 2),
    )


def write_config(path: Path) -> Path:
    path.write_text(json.dumps(tiny_config().to_dict()))
    return path


def csv_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (Path(folder) / f"{name}.csv").read_bytes() for name in TABLES}


def numeric_close(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> bool:
    """Same rows and text columns; numeric columns equal within rtol (NaN equal to NaN)."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    for column in a.columns:
        x, y = a[column].to_numpy(), b[column].to_numpy()
        if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number):
            if not np.allclose(x.astype(float), y.astype(float), rtol=rtol, atol=1e-6, equal_nan=True):
                return False
        elif not ((x == y) | (pd.isna(x) & pd.isna(y))).all():
            return False
    return True


def subprocess_env(base: Path, devices: int = 1) -> dict:
    """Environment for a CLI subprocess: a persistent compilation cache shared by the session's subprocesses,
    and `devices` simulated CPU devices (the flag must be set before jax is imported)."""
    env = dict(os.environ)
    env.update({
        "JAX_COMPILATION_CACHE_DIR": str(base / "jax-cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    })
    return env


def cli_args(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "robustprune.cli", "--log-level", "INFO", "run", "--config", str(config),
            "--out", str(out), "--no-progress", "--checkpoint-every", str(CHECKPOINT_EVERY), *extra]


def reference_run(base: Path) -> Path:
    """One uninterrupted single-device CLI run (chunk size 2), made once per test session and shared."""
    out = base / "reference"
    if not (out / "cells.csv").exists():
        config = write_config(base / "tiny.json")
        done = subprocess.run(cli_args(config, out, "--chunk-size", "2"), env=subprocess_env(base),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return out
