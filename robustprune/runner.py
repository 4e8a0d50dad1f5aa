"""Run this process's share of a grid: plan the chunks, train and score them, write the result shard.

`run_share` is what `robustprune.study.run_study` calls between validation and writing the run folder. It
picks the process's cells (all of them on one host), sets up the device mesh, fixes the chunk size (given,
resumed from the folder, or measured), records the layout, and runs `grid.run_grid`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from robustprune.cell_groups import network_groups
from robustprune.config import ConfigError, StudyConfig
from robustprune.distributed import ProcessSettings, local_mesh, process_share
from robustprune.grid import (
    PROBE_COMPILE_SECONDS,
    GridResult,
    expand_cells,
    pick_chunk_size,
    run_grid,
    write_layout,
)
from robustprune.results import config_hash, write_csv
from robustprune.robust_grid import program_config
from robustprune.validate import shard_dir

logger = logging.getLogger(__name__)

SORT_KEYS = {"cells": ["cell_id"], "evaluations": ["cell_id", "attack", "eps"],
             "certificates": ["cell_id", "bound", "eps"], "certificates_path": ["cell_id", "bound", "sparsity"]}
# Metrics that become NaN for a diverged cell (its last finite parameters are not a trained policy).
DIVERGED_NAN = {"cells": ["train_return"], "evaluations": ["return_mean", "return_std", "tv_empirical"],
                "certificates": ["lipschitz", "tv_bound", "lipschitz_empirical", "lipschitz_ratio", "tv_pgd", "tightness",
                                 "certified_radius", "value_gap_bound", "finite_horizon_gap_bound"],
                "certificates_path": ["lipschitz", "tv_bound", "increase_fraction"]}


def canonical_order(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """Sort a result table by its keys, so that chunking and sharding never change a file's row order."""
    keys = [k for k in SORT_KEYS.get(name, ["cell_id"]) if k in table.columns]
    return table.sort_values(keys, kind="stable", ignore_index=True)


def relabel_chunk(tables: dict[str, pd.DataFrame], cells: list, n_real: int, diverged_at) -> dict:
    """Map local cell indices (rows of a padded chunk) to global cell ids, drop padding, mark divergence.

    tables: local `cell_id` in [0, len(cells)). diverged_at: int [len(cells)], −1 for cells that trained fine.
    """
    ids = np.asarray([c.cell_id for c in cells])
    diverged_at = np.asarray(diverged_at)
    out = {}
    for name, table in tables.items():
        table = table[table.cell_id < n_real].copy()
        local = table.cell_id.to_numpy().astype(int)
        bad = diverged_at[local] >= 0
        for column in DIVERGED_NAN.get(name, []):
            if column in table.columns:
                table.loc[bad, column] = np.nan
        if name == "cells":
            table["diverged"] = bad
            table["diverged_at"] = diverged_at[local]
        table["cell_id"] = ids[local]
        out[name] = canonical_order(name, table)
    return out


def decide_chunk_size(cfg: StudyConfig, cells: list, mesh, *, requested, resumed, checkpoint_every=None
                      ) -> tuple[int, float | None]:
    """The chunk size (a multiple of the mesh size): requested, else the one the folder started with, else
    measured from device memory. Returns (chunk size, measured bytes per cell or None)."""
    PROBE_COMPILE_SECONDS["last"] = 0.0  # no probe compile unless pick_chunk_size runs below
    ndev = mesh.size
    if requested is not None or resumed is not None:
        size = requested if requested is not None else resumed
        rounded = -(-size // ndev) * ndev
        if requested is None and rounded != size:
            raise ConfigError(f"this folder was started with chunks of {size} cells, which {ndev} devices cannot "
                              f"split evenly, so its saved chunks cannot be resumed here. Resume on a device count "
                              f"that divides {size}, or pass --overwrite.")
        if rounded != size:
            logger.info("Chunk size %d rounded up to %d, a multiple of the %d devices", size, rounded, ndev)
        logger.info("Chunk size %d cells (%s)", rounded, "--chunk-size" if requested is not None else "resumed")
        return rounded, None
    return pick_chunk_size(cfg, cells, mesh, checkpoint_every=checkpoint_every)


def run_share(cfg: StudyConfig, out: Path, score_fn, *, process: ProcessSettings, chunk_size=None,
              resumed_chunk_size=None, checkpoint_every=None, progress=True, nan_at_update=None
              ) -> tuple[GridResult, dict]:
    """Train and score this process's cells. Returns the grid result and a record of the layout."""
    all_cells = expand_cells(cfg)
    share = process_share(len(all_cells), process.process_id, process.num_processes)
    cells = all_cells[share.start:share.stop]
    mesh = local_mesh()
    groups = network_groups(cfg, cells)
    # NOTE: the chunk size is measured on the first program (configured shape, first robust method) only.
    size, per_cell = decide_chunk_size(groups[0][0], groups[0][1], mesh, requested=chunk_size,
                                       resumed=resumed_chunk_size, checkpoint_every=checkpoint_every)
    folder = shard_dir(out, process.process_id)
    layout = {"config_hash": config_hash(cfg), "chunk_size": size, "num_processes": process.num_processes,
              "process_id": process.process_id, "first_cell": share.start, "stop_cell": share.stop,
              "local_devices": mesh.size, "per_cell_bytes": per_cell,
              "memory_probe_compile_s": PROBE_COMPILE_SECONDS["last"]}
    write_layout(folder, layout)
    logger.info("Process %d: cells %d-%d of %d in chunks of %d on %d %s device(s)", process.process_id,
                share.start, share.stop - 1, len(all_cells), size, mesh.size, jax.local_devices()[0].platform)
    results = []
    for j, (group_cfg, members) in enumerate(groups):
        # Capacity-control cells have narrower networks: a separate program, with chunks of its own.
        # Scoring does not depend on the robust method, so every method's cells share one evaluation program.
        score_cfg = program_config(group_cfg, "vanilla")
        results.append(run_grid(group_cfg, folder, members, functools.partial(score_fn, score_cfg),
                                chunk_size=size, mesh=mesh, progress=progress, checkpoint_every=checkpoint_every,
                                nan_at_update=nan_at_update, prefix="" if j == 0 else f"group{j}_"))
    return merge_results(results), layout


def merge_results(results: list[GridResult]) -> GridResult:
    """One GridResult from those of several network groups (final trees keyed group_<j> when several)."""
    if len(results) == 1:
        return results[0]
    tables = {name: pd.concat([r.tables[name] for r in results], ignore_index=True) for name in results[0].tables}
    return GridResult(
        tables={name: canonical_order(name, t) for name, t in tables.items()},
        final={f"group_{j}": r.final for j, r in enumerate(results)},
        compile_seconds=sum(r.compile_seconds for r in results),
        run_seconds=sum(r.run_seconds for r in results),
        chunks_run=sum(r.chunks_run for r in results),
        chunks_skipped=sum(r.chunks_skipped for r in results),
        diverged_cells=sum(r.diverged_cells for r in results),
    )


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        write_csv(Path(folder) / f"{name}.csv", canonical_order(name, table))
