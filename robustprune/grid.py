"""Expand a study into cells and train them all in one compiled program.

Training runs as a few calls of one jitted segment function (`segment_updates` PPO updates for every cell),
so the host can show progress between calls without recompiling.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from robustprune.config import StudyConfig
from robustprune.train import CellParams, TrainState, init_train_state, make_cell_params, stack_cells, train_update

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of the grid, identified by `cell_id` (its index in the grid)."""

    cell_id: int
    sparsity: float
    seed: int


def expand_cells(cfg: StudyConfig) -> list[Cell]:
    """Cells in sparsity-major order: (s_0, seed_0), (s_0, seed_1), ..., (s_1, seed_0), ..."""
    pairs = [(s, seed) for s in cfg.prune.sparsities for seed in cfg.seeds]
    return [Cell(i, s, seed) for i, (s, seed) in enumerate(pairs)]


def cell_params(cfg: StudyConfig, cells: list[Cell]) -> CellParams:
    """Stacked traced settings of `cells`, with a leading cell axis."""
    return stack_cells([make_cell_params(cfg, c.sparsity, c.seed) for c in cells])


def segment_length(num_updates: int, target: int = 10) -> int:
    """The largest divisor of num_updates that is at most `target`, so every segment has the same shape."""
    return max(d for d in range(1, min(target, num_updates) + 1) if num_updates % d == 0)


def _train_segment(cfg: StudyConfig, length: int, cell: CellParams, ts: TrainState):
    return jax.lax.scan(functools.partial(train_update, cfg, cell), ts, None, length)


@dataclasses.dataclass
class TrainOutput:
    """Final batched training state, per-update metrics [cells, num_updates] and timings in seconds."""

    state: TrainState
    metrics: dict
    compile_seconds: float
    run_seconds: float


def train_grid(cfg: StudyConfig, cells: CellParams, *, progress: bool = True) -> TrainOutput:
    """Train every cell (leading axis of `cells`) with one compiled init and one compiled segment program."""
    length = segment_length(cfg.ppo.num_updates)
    init_fn = jax.jit(jax.vmap(functools.partial(init_train_state, cfg)))
    segment_fn = jax.jit(jax.vmap(functools.partial(_train_segment, cfg, length)))

    start = time.perf_counter()
    ts = init_fn(cells)
    compiled = segment_fn.lower(cells, ts).compile()
    compile_seconds = time.perf_counter() - start
    logger.info("Compiled training for %d cells in %.1f s", cells.key.shape[0], compile_seconds)

    start = time.perf_counter()
    chunks = []
    num_cells = cells.key.shape[0]
    bar = tqdm(total=cfg.ppo.num_updates, desc=f"train {num_cells} cells", unit="update", disable=not progress)
    for _ in range(cfg.ppo.num_updates // length):
        ts, metrics = compiled(cells, ts)
        chunks.append(metrics)
        recent = float(jnp.median(metrics["episode_return"][:, -1]))
        bar.set_postfix(median_train_return=f"{recent:.1f}")
        bar.update(length)
    bar.close()
    jax.block_until_ready(ts)
    run_seconds = time.perf_counter() - start

    metrics = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1), *chunks)
    return TrainOutput(ts, metrics, compile_seconds, run_seconds)
