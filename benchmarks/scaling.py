"""Env steps per second and seconds per cell of one batched training program, for 1, 4, 16 and 64 cells.

    python benchmarks/scaling.py [--cells 1 4 16 64] [--env point_mass] [--updates 10]

Each cell count is its own compiled program; compile time is reported apart from run time.
Writes results/benchmarks/scaling.json.
"""

from __future__ import annotations

import argparse

from grid_common import bench_config, record
from robustprune.grid import Cell, cell_params, grid_programs, train_grid


def measure(cfg, num_cells: int) -> dict:
    cells = cell_params(cfg, [Cell(i, 0.5, i, "gradual", "magnitude", "global") for i in range(num_cells)])
    out = train_grid(cfg, cells, progress=False)  # times compile and run apart
    run_s = out.run_seconds
    steps = num_cells * cfg.ppo.env_steps
    return {"cells": num_cells, "compile_s": out.compile_seconds, "run_s": run_s,
            "s_per_cell": run_s / num_cells, "env_steps_per_s": steps / run_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--env", default="point_mass")
    parser.add_argument("--updates", type=int, default=10, help="PPO updates per cell")
    parser.add_argument("--num-envs", type=int, default=16, help="environments per cell")
    parser.add_argument("--unroll", type=int, default=32, help="steps per environment per update")
    parser.add_argument("--name", default="scaling", help="record name under results/benchmarks/")
    args = parser.parse_args()
    cfg = bench_config(env=args.env, num_updates=args.updates, num_envs=args.num_envs, unroll=args.unroll)
    rows = []
    for n in args.cells:
        rows.append(measure(cfg, n))
        grid_programs.cache_clear()
        print(rows[-1])
    record(args.name, {"setup": {"env": args.env, "env_steps_per_cell": cfg.ppo.env_steps,
                                 "num_envs": cfg.ppo.num_envs}, "results": rows})


if __name__ == "__main__":
    main()
