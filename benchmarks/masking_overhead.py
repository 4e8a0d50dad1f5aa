"""Time of training the default grid with masking and scheduling, against the same grid with masking disabled.

Both runs train the same cells (same keys, same shapes) with `grid.train_grid`. The masked run recomputes every
cell's masks after every update (traced method, allocation and schedule) and masks gradients and updates;
the disabled run (static `prune.enabled=False`) skips all of it, so its cells train dense. Only run time is
compared; compile time is recorded apart. Repeats alternate between the two, and the ratio uses each one's
fastest run, which is the least disturbed by other load on a shared machine.

Writes results/benchmarks/masking_overhead.json. Usage: python benchmarks/masking_overhead.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import jax

from robustprune.grid import cell_params, expand_cells, train_grid
from robustprune.presets import get_preset
from robustprune.results import package_versions

OUT = Path("results/benchmarks/masking_overhead.json")


def time_training(cfg, params) -> dict:
    """Train once; return compile and run seconds."""
    out = train_grid(cfg, params, progress=False, desc="benchmark")
    jax.block_until_ready(out.state.params)
    return {"compile_s": out.compile_seconds, "run_s": out.run_seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    masked_cfg = get_preset(args.preset).validate()
    disabled_cfg = dataclasses.replace(masked_cfg, prune=dataclasses.replace(masked_cfg.prune, enabled=False))
    cells = expand_cells(masked_cfg)
    params = cell_params(masked_cfg, cells)

    runs = {"masked": [], "disabled": []}
    start = time.perf_counter()
    for _ in range(args.repeats):
        for name, cfg in (("masked", masked_cfg), ("disabled", disabled_cfg)):
            runs[name].append(time_training(cfg, params))
            print(f"{name}: {runs[name][-1]}", flush=True)
    best = {name: min(r["run_s"] for r in rs) for name, rs in runs.items()}
    record = {
        "benchmark": "masking_overhead",
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "preset": args.preset,
        "cells": len(cells),
        "num_updates": masked_cfg.ppo.num_updates,
        "env_steps_per_cell": masked_cfg.ppo.env_steps,
        "hardware": {"machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                     "devices": [str(d) for d in jax.devices()],
                     "load_average_at_end": list(os.getloadavg())},
        "versions": package_versions(),
        "runs": runs,
        "seconds": best,
        "ratio": best["masked"] / best["disabled"],
        "overhead_percent": 100.0 * (best["masked"] / best["disabled"] - 1.0),
        "target": "masked/disabled run time below 1.05 on CPU",
        "wall_s": time.perf_counter() - start,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("seconds", "ratio", "overhead_percent")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
