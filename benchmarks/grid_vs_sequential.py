"""8 cells trained as one batched program versus 8 sequential calls of a single-cell trainer compiled once.

    python benchmarks/grid_vs_sequential.py [--devices 2] [--cells 8] [--updates 10]

--devices N forces N host-platform (CPU) devices and shards the batched grid's cell axis over them with
jax.jit + NamedSharding (the flag must be set before jax is imported, so it is read from argv first).
Target: batched at least 2× faster than sequential, compile excluded. Writes
results/benchmarks/grid_vs_sequential.json.
"""

from __future__ import annotations

import argparse
import os

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--devices", type=int, default=1, help="forced CPU devices for the batched grid")
parser.add_argument("--cells", type=int, default=8, help="number of cells")
parser.add_argument("--updates", type=int, default=20, help="PPO updates per cell")
parser.add_argument("--env", default="inverted_pendulum", help="environment name (default: the default preset's)")
parser.add_argument("--num-envs", type=int, default=64, help="parallel environments per cell")
parser.add_argument("--name", default="grid_vs_sequential", help="record name under results/benchmarks/")
ARGS = parser.parse_args()
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={ARGS.devices}")

import functools  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

from grid_common import bench_config, record  # noqa: E402
from robustprune.distributed import local_mesh  # noqa: E402
from robustprune.grid import Cell, cell_params, train_grid  # noqa: E402
from robustprune.train import train  # noqa: E402


def main() -> None:
    cfg = bench_config(env=ARGS.env, num_updates=ARGS.updates, num_envs=ARGS.num_envs)
    cells = [Cell(i, 0.5, i, "gradual", "magnitude", "global") for i in range(ARGS.cells)]
    stacked = cell_params(cfg, cells)
    mesh = local_mesh() if jax.local_device_count() > 1 else None

    batched = train_grid(cfg, stacked, progress=False, mesh=mesh)  # times compile and run apart
    batched_s = batched.run_seconds

    single = jax.jit(functools.partial(train, cfg))
    first = jax.tree_util.tree_map(lambda x: x[0], stacked)
    start = time.perf_counter()
    compiled = single.lower(first).compile()
    single_compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(ARGS.cells):
        jax.block_until_ready(compiled(jax.tree_util.tree_map(lambda x, i=i: x[i], stacked)))
    sequential_s = time.perf_counter() - start

    steps = ARGS.cells * cfg.ppo.env_steps
    record(ARGS.name, {
        "setup": {"env": cfg.env.name, "cells": ARGS.cells, "env_steps_per_cell": cfg.ppo.env_steps,
                  "num_envs": cfg.ppo.num_envs, "devices_for_batched": jax.local_device_count(),
                  "sharding": "jit + NamedSharding over a 1-D 'cells' mesh" if mesh else "none (one device)"},
        "results": {
            "batched_run_s": batched_s,
            "batched_compile_s": batched.compile_seconds,
            "sequential_run_s": sequential_s,
            "sequential_compile_s": single_compile_s,
            "speedup_excluding_compile": sequential_s / batched_s,
            "speedup_including_compile": (sequential_s + single_compile_s) / (batched_s + batched.compile_seconds),
            "batched_env_steps_per_s": steps / batched_s,
            "sequential_env_steps_per_s": steps / sequential_s,
        },
    })


if __name__ == "__main__":
    main()
