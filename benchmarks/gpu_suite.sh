#!/usr/bin/env bash
# One 10-minute GPU call: hopper, about 1M env steps per cell, 256 cells in one compiled program.
# Prepared, not yet run (no GPU was lent when it was written). Run from the repository root:
#   bash benchmarks/gpu_suite.sh
# Writes results/benchmarks/gpu_scaling_hopper.json (seconds per cell, env steps/s, compile time apart)
# and, when the machine has spare time, the batched-vs-sequential record on the GPU.
set -euo pipefail
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.9
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
# 488 updates × 64 envs × 32 steps = 999,424 env steps per cell; 256 cells = 256M env steps in one program.
timeout 420 python benchmarks/scaling.py --env hopper --cells 256 --updates 488 --num-envs 64 --unroll 32 \
    --name gpu_scaling_hopper
timeout 150 python benchmarks/grid_vs_sequential.py --cells 8 --updates 50 --name gpu_grid_vs_sequential || echo "grid_vs_sequential skipped"
