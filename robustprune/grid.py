"""Expand a study into cells and train them in chunks, each chunk one compiled program sharded over devices.

Training runs as a few calls of one jitted segment function (`segment_length` PPO updates for every cell of a
chunk), so the host can show progress and checkpoint between calls without recompiling. Every chunk has the
same padded shape, so the whole grid compiles once. A cell whose parameters or losses become NaN/Inf is
frozen and marked `diverged_at`; the other cells of its program are unaffected, because vmap keeps them apart.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from robustprune.checkpoint import ChunkStore
from robustprune.config import ConfigError, StudyConfig
from robustprune.distributed import cell_sharding
from robustprune.train import CellParams, TrainState, init_train_state, make_cell_params, stack_cells, train_update

logger = logging.getLogger(__name__)


NO_PRUNING = "none"  # schedule, method and allocation label of dense cells


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of the grid, identified by `cell_id` (its index in the grid).

    Dense cells (sparsity 0) carry NO_PRUNING as schedule, method and allocation. A capacity-control cell is a
    dense cell whose hidden layers are narrowed to `hidden_sizes`, about the kernel-weight count of sparsity
    `capacity_of` (`capacity_matched_hidden_sizes`). Other cells have capacity_of 0 and hidden_sizes None (the
    configured sizes).
    """

    cell_id: int
    sparsity: float
    seed: int
    schedule: str = NO_PRUNING
    method: str = NO_PRUNING
    allocation: str = NO_PRUNING
    capacity_of: float = 0.0
    hidden_sizes: tuple[int, ...] | None = None
    robust_method: str = "vanilla"  # robust-training method (static: one program per method)
    kappa: float = 0.0
    train_eps: float = 0.0


def expand_cells(cfg: StudyConfig) -> list[Cell]:
    """Cells in sparsity-major order, then schedule, method, allocation, seed; capacity-control cells last.

    A sparsity 0 gives one dense cell per seed (schedule and method do not change a dense run). With one
    schedule, method and allocation the order is (s_0, seed_0), (s_0, seed_1), ..., (s_1, seed_0), ...
    """
    p = cfg.prune
    specs = []
    for s in p.sparsities:
        if s == 0:
            specs += [dict(sparsity=0.0, seed=seed) for seed in cfg.seeds]
            continue
        for schedule, method, allocation in itertools.product(p.schedules, p.methods, p.allocations):
            specs += [dict(sparsity=s, seed=seed, schedule=schedule, method=method, allocation=allocation)
                      for seed in cfg.seeds]
    if p.capacity_control:
        from robustprune.cell_groups import policy_io_sizes
        from robustprune.pruning import capacity_matched_hidden_sizes

        obs, act = policy_io_sizes(cfg.env.name, cfg.env.backend)
        for s in (s for s in p.sparsities if s > 0):
            sizes = capacity_matched_hidden_sizes(obs, act, cfg.network.hidden_sizes, s)
            specs += [dict(sparsity=0.0, seed=seed, capacity_of=s, hidden_sizes=sizes) for seed in cfg.seeds]
    from robustprune.robust_grid import cross_robust_methods

    return [Cell(i, **spec) for i, spec in enumerate(cross_robust_methods(cfg, specs))]


def cell_params(cfg: StudyConfig, cells: list[Cell]) -> CellParams:
    """Stacked traced settings of `cells`, with a leading cell axis.

    Raises ConfigError when a cell's networks are not cfg's shape (capacity-control cells: train each group of
    `robustprune.cell_groups.network_groups` with its own config), or when the first/last-layer cap makes a
    target unreachable.
    """
    from robustprune.cell_groups import cell_hidden_sizes, check_cap_feasible

    def known(value, choices):
        return choices[0] if value == NO_PRUNING else value

    from robustprune.robust_grid import check_program_method

    p = cfg.prune
    check_cap_feasible(cfg)
    check_program_method(cfg, cells)
    for c in cells:
        if cell_hidden_sizes(cfg, c) != tuple(cfg.network.hidden_sizes):
            raise ConfigError(
                f"cell {c.cell_id} is a capacity-control cell with hidden sizes {cell_hidden_sizes(cfg, c)}, "
                f"but network.hidden_sizes={cfg.network.hidden_sizes}: hidden sizes are static, so train it "
                "in its own program (robustprune.cell_groups.network_groups), or set prune.capacity_control=False."
            )
    return stack_cells([
        make_cell_params(cfg, c.sparsity, c.seed, known(c.schedule, p.schedules), known(c.method, p.methods),
                         known(c.allocation, p.allocations), kappa=c.kappa, train_eps=c.train_eps)
        for c in cells
    ])


def segment_length(num_updates: int, target: int = 10, checkpoint_every: int | None = None) -> int:
    """The largest divisor of num_updates that is at most `target`, so every segment has the same shape.

    With `checkpoint_every`, segments are also at most that long, so a checkpoint falls at least that often.
    """
    target = min(target, checkpoint_every) if checkpoint_every else target
    return max(d for d in range(1, min(target, num_updates) + 1) if num_updates % d == 0)



def all_finite(tree) -> jax.Array:
    """A scalar bool: every floating-point leaf of `tree` is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def guarded_update(cfg: StudyConfig, cell: CellParams, nan_at_update: jax.Array, ts: TrainState, _=None):
    """One PPO update that freezes a cell once its params or losses become NaN/Inf.

    `nan_at_update` is a traced debug fault: at that update (−1 for never) the cell's params are set to NaN,
    so tests can plant a divergence in one cell. A diverged cell keeps its last finite state, its
    `diverged_at` is the update at which it diverged, and its metrics from then on are NaN.
    """
    new, metrics = train_update(cfg, cell, ts)
    poison = ts.update == nan_at_update
    new = new.replace(params=jax.tree_util.tree_map(lambda x: jnp.where(poison, jnp.nan, x), new.params))

    finite = all_finite(new.params) & all_finite(metrics)
    diverged_at = jnp.where((ts.diverged_at < 0) & ~finite, ts.update, ts.diverged_at)
    frozen = diverged_at >= 0
    out = jax.tree_util.tree_map(lambda old, fresh: jnp.where(frozen, old, fresh), ts, new)
    out = out.replace(update=new.update, diverged_at=diverged_at)
    metrics = jax.tree_util.tree_map(lambda m: jnp.where(frozen, jnp.nan, m), metrics)
    return out, metrics


def _train_segment(cfg: StudyConfig, length: int, cell: CellParams, nan_at_update: jax.Array, ts: TrainState):
    return jax.lax.scan(functools.partial(guarded_update, cfg, cell, nan_at_update), ts, None, length)


@functools.lru_cache(maxsize=16)
def grid_programs(cfg: StudyConfig, mesh=None, length: int | None = None):
    """Jitted (init, segment) programs over a leading cell axis, sharded over `mesh` when given.

    Cached per (config, mesh), so every chunk of a grid, and every rerun in one process, reuses one compile.
    """
    length = length or segment_length(cfg.ppo.num_updates)
    init = jax.vmap(functools.partial(init_train_state, cfg))
    segment = jax.vmap(functools.partial(_train_segment, cfg, length))
    if mesh is None:
        return jax.jit(init), jax.jit(segment)
    shard = cell_sharding(mesh)
    return (jax.jit(init, in_shardings=shard, out_shardings=shard),
            jax.jit(segment, in_shardings=shard, out_shardings=shard))


@dataclasses.dataclass
class TrainOutput:
    """Final batched training state, per-update metrics [cells, num_updates] (numpy) and timings in seconds."""

    state: TrainState
    metrics: dict
    compile_seconds: float
    run_seconds: float


def _put(tree, mesh):
    return tree if mesh is None else jax.device_put(tree, cell_sharding(mesh))


def train_grid(cfg: StudyConfig, cells: CellParams, *, progress: bool = True, mesh=None,
               nan_at_update=None, store: ChunkStore | None = None, checkpoint_every: int | None = None,
               desc: str = "train") -> TrainOutput:
    """Train every cell (leading axis of `cells`) with one compiled init and one compiled segment program.

    mesh: shard the cell axis over it (the number of cells must divide by its size).
    nan_at_update: int32 [cells], debug fault per cell (−1: none).
    store, checkpoint_every: checkpoint the whole TrainState every so many updates (at segment ends), resume
        from the store's checkpoint when it has one, and checkpoint on Ctrl-C before re-raising.
    """
    num_cells = cells.key.shape[0]
    length = segment_length(cfg.ppo.num_updates, checkpoint_every=checkpoint_every if store is not None else None)
    if nan_at_update is None:
        nan_at_update = jnp.full((num_cells,), -1, jnp.int32)
    cells, nan_at_update = _put(cells, mesh), _put(jnp.asarray(nan_at_update, jnp.int32), mesh)
    init_fn, segment_fn = grid_programs(cfg, mesh, length)

    start = time.perf_counter()
    ts = init_fn(cells)
    compiled = segment_fn.lower(cells, nan_at_update, ts).compile()
    compile_seconds = time.perf_counter() - start
    logger.info("Compiled training for %d cells in %.1f s (near 0 when the chunk-size probe compiled it)",
                num_cells, compile_seconds)

    done, chunks = 0, []
    resumed = store.load_train(ts) if store is not None else None
    if resumed is not None:
        ts, saved_metrics, done = resumed
        chunks.append(saved_metrics)

    start = time.perf_counter()
    steps_per_update = num_cells * cfg.ppo.batch_size
    bar = tqdm(total=cfg.ppo.num_updates * steps_per_update, initial=done * steps_per_update, desc=desc,
               unit="env step", unit_scale=True, disable=not progress)
    try:
        while done < cfg.ppo.num_updates:
            ts_next, metrics = compiled(cells, nan_at_update, ts)
            chunks.append(jax.device_get(metrics))
            ts, done = ts_next, done + length
            bar.set_postfix(median_train_return=f"{np.nanmedian(chunks[-1]['episode_return'][:, -1]):.1f}")
            bar.update(length * steps_per_update)
            if store is not None and checkpoint_every and done < cfg.ppo.num_updates \
                    and done // checkpoint_every > (done - length) // checkpoint_every:
                store.save_train(ts, _concat(chunks), done)
    except KeyboardInterrupt:
        if store is not None and done > 0:
            store.save_train(ts, _concat(chunks), done)
        raise
    finally:
        bar.close()
    jax.block_until_ready(ts)
    return TrainOutput(ts, _concat(chunks), compile_seconds, time.perf_counter() - start)


def _concat(chunks: list[dict]) -> dict:
    return {k: np.concatenate([np.asarray(c[k]) for c in chunks], axis=1) for k in chunks[0]}


def memory_budget(device, fraction: float = 0.8) -> int:
    """Bytes a chunk may use on `device`: `fraction` of its free memory (host RAM for CPU devices)."""
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    else:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(fraction * free)


def program_bytes(compiled) -> int:
    """Per-device bytes of a compiled program: arguments + outputs + temporaries − aliased buffers."""
    mem = compiled.memory_analysis()
    return int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
               - mem.alias_size_in_bytes)


# Compile time spent by the last `pick_chunk_size` call. Its compile is cached and serves the run, so
# `train_grid` then measures almost no compile time; run records add this figure back.
PROBE_COMPILE_SECONDS = {"last": 0.0}


def pick_chunk_size(cfg: StudyConfig, cells: list[Cell], mesh, *, budget: int | None = None,
                    checkpoint_every: int | None = None) -> tuple[int, float]:
    """The largest chunk (a multiple of the mesh size) whose training program fits the memory budget.

    Compiles the program for all `cells` (padded to the mesh) and reads its footprint from
    `compiled.memory_analysis()`. If it fits, that compile serves the run. If not, the per-cell footprint
    (the footprint over the cells per device) sizes the chunk. Returns (chunk size, bytes per cell).
    NOTE: evaluation memory is not measured; it is usually far below training's (no optimizer, no batch).
    """
    ndev = mesh.size
    size = -(-len(cells) // ndev) * ndev
    params = _put(cell_params(cfg, pad_cells(cells, size)), mesh)
    nan_at = _put(jnp.full((size,), -1, jnp.int32), mesh)
    length = segment_length(cfg.ppo.num_updates, checkpoint_every=checkpoint_every)
    init_fn, segment_fn = grid_programs(cfg, mesh, length)
    start = time.perf_counter()
    ts = init_fn(params)  # the same inputs as `train_grid`, so this compile serves the run when it fits
    footprint = program_bytes(segment_fn.lower(params, nan_at, ts).compile())
    PROBE_COMPILE_SECONDS["last"] = time.perf_counter() - start
    per_cell = footprint / (size // ndev)
    budget = memory_budget(mesh.devices.flat[0]) if budget is None else budget
    chunk = size if footprint <= budget else max(1, int(budget // per_cell)) * ndev
    logger.info("Chunk size %d cells (%d devices): measured %.2f MB per cell against a budget of %.0f MB "
                "per device", chunk, ndev, per_cell / 1e6, budget / 1e6)
    return min(chunk, size), per_cell


def pad_cells(cells: list[Cell], size: int) -> list[Cell]:
    """Pad a chunk to `size` cells by repeating its last cell (padded results are discarded)."""
    return list(cells) + [cells[-1]] * (size - len(cells))


def split_chunks(cells: list[Cell], chunk_size: int) -> list[list[Cell]]:
    return [cells[i:i + chunk_size] for i in range(0, len(cells), chunk_size)]


@dataclasses.dataclass
class GridResult:
    """The tables of this process's cells, their final trees (stacked), timings and chunk statistics."""

    tables: dict
    final: dict
    compile_seconds: float = 0.0
    run_seconds: float = 0.0
    chunks_run: int = 0
    chunks_skipped: int = 0
    diverged_cells: int = 0


def final_tree(ts: TrainState, n: int) -> dict:
    """What a finished chunk keeps of its first `n` cells: params, masks, normalizer and diverged_at."""
    tree = {"params": ts.params, "masks": ts.masks, "normalizer": ts.normalizer, "diverged_at": ts.diverged_at}
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], tree)


def _final_target(cfg: StudyConfig, chunk: list[Cell]) -> dict:
    """Zero arrays shaped like `final_tree` of `chunk`, from an abstract trace (no compile)."""
    ts = jax.eval_shape(grid_programs(cfg)[0], cell_params(cfg, chunk))
    tree = {"params": ts.params, "masks": ts.masks, "normalizer": ts.normalizer, "diverged_at": ts.diverged_at}
    return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), tree)


def run_grid(cfg: StudyConfig, folder: Path, cells: list[Cell], chunk_fn, *, chunk_size: int, mesh,
             progress: bool = True, checkpoint_every: int | None = None, nan_at_update: dict | None = None,
             prefix: str = "") -> GridResult:
    """Train and score `cells` chunk by chunk, skipping chunks whose checksummed results are in `folder`.

    chunk_fn(cells, n_real, state, metrics) -> {table name: DataFrame} scores one padded chunk; rows of the
    padding (local index >= n_real) must be dropped by it. Each finished chunk is saved before the next starts.
    nan_at_update: {cell_id: update} debug faults.
    """
    result = GridResult(tables={}, final={})
    tables, finals = [], []
    for k, chunk in enumerate(split_chunks(cells, chunk_size)):
        store = ChunkStore(Path(folder) / "chunks" / f"{prefix}chunk_{k:04d}")
        if store.is_finished():
            logger.info("Chunk %d (cells %d-%d) is finished; skipping it", k, chunk[0].cell_id, chunk[-1].cell_id)
            tables.append(store.load_results())
            finals.append(store.load_final(_final_target(cfg, chunk)))
            result.chunks_skipped += 1
            continue
        padded = pad_cells(chunk, chunk_size)
        faults = np.asarray([(nan_at_update or {}).get(c.cell_id, -1) for c in padded], np.int32)
        trained = train_grid(cfg, cell_params(cfg, padded), progress=progress, mesh=mesh, nan_at_update=faults,
                             store=store, checkpoint_every=checkpoint_every, desc=f"train chunk {k}")
        chunk_tables = chunk_fn(padded, len(chunk), trained.state, trained.metrics)
        final = final_tree(trained.state, len(chunk))
        store.save_results(chunk_tables, final)
        tables.append(chunk_tables)
        finals.append(final)
        result.compile_seconds += trained.compile_seconds
        result.run_seconds += trained.run_seconds
        result.chunks_run += 1

    import pandas as pd

    result.tables = {name: pd.concat([t[name] for t in tables], ignore_index=True) for name in tables[0]}
    result.final = jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *finals)
    result.diverged_cells = int(np.sum(result.final["diverged_at"] >= 0))
    if result.diverged_cells:
        logger.warning("%d of %d cells diverged (NaN/Inf); their metrics are NaN", result.diverged_cells, len(cells))
    return result


def write_layout(folder: Path, layout: dict) -> None:
    """Record how this process's cells are chunked, so a rerun resumes with the same chunks."""
    from robustprune.results import write_json

    write_json(Path(folder) / "layout.json", layout)


def read_layout(folder: Path) -> dict | None:
    path = Path(folder) / "layout.json"
    return json.loads(path.read_text()) if path.exists() else None
