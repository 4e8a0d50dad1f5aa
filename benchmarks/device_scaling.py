"""The same batched grid sharded over 1, 2 and 4 simulated CPU devices (one subprocess per device count).

    python benchmarks/device_scaling.py [--devices 1 2 4] [--cells 8] [--updates 10]

On a CPU host, forced devices split the same cores, so this measures sharding overhead and XLA's use of the
cores, not extra hardware. Writes results/benchmarks/device_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, jax
from grid_common import bench_config
from robustprune.distributed import local_mesh
from robustprune.grid import Cell, cell_params, train_grid
cfg = bench_config(num_updates={updates})
cells = cell_params(cfg, [Cell(i, 0.5, i, "gradual", "magnitude", "global") for i in range({cells})])
mesh = local_mesh()
first = train_grid(cfg, cells, progress=False, mesh=mesh)  # times compile and run apart
run_s = first.run_seconds
print("RESULT", json.dumps({{"devices": jax.local_device_count(), "compile_s": first.compile_seconds,
      "run_s": run_s, "env_steps_per_s": {cells} * cfg.ppo.env_steps / run_s}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--updates", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for n in args.devices:
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu"}
        code = CHILD.format(cells=args.cells, updates=args.updates)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=Path(__file__).parent, check=True)
        rows.append(json.loads(out.stdout.split("RESULT", 1)[1]))
        print(rows[-1])
    sys.path.insert(0, str(Path(__file__).parent))
    from grid_common import record

    record("device_scaling", {"setup": {"cells": args.cells, "updates": args.updates,
                                        "note": "simulated devices share the same CPU cores"}, "results": rows})


if __name__ == "__main__":
    main()
