"""Result tables of the pruning settings: per-cell settings, per-layer sparsity, per-update trajectory.

- `cell_pruning_columns`: the columns cells.csv gets for each cell's schedule, method and allocation.
- `layers_table` (layers.csv): one row per cell × network × layer, with the layer's shape, target and achieved
  sparsity. The target of a layer is its share under uniform or ERK allocation; under global allocation the
  threshold, not the layer, is set, so the layer target is empty (NaN).
- `trajectory_table` (sparsity_trajectory.csv): one row per cell × update, with the scheduled target and the
  achieved sparsity after that update's pruning step, and the training return of that update.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from robustprune.cell_groups import cell_hidden_sizes
from robustprune.config import StudyConfig
from robustprune.pruning import ALLOCATIONS, layer_caps, layer_densities, layer_sparsity
from robustprune.train.state import cell_schedule_settings


def cell_pruning_columns(cfg: StudyConfig, cell) -> dict:
    """Schedule, method and allocation settings of one cell, as cells.csv columns."""
    p = cfg.prune
    pruned = cell.sparsity > 0
    schedule = cell_schedule_settings(cfg, cell.sparsity, cell.schedule) if pruned else {}
    return {
        "schedule": cell.schedule,
        "method": cell.method,
        "allocation": cell.allocation,
        "prune_start": schedule.get("start", np.nan),
        "prune_end": schedule.get("end", np.nan),
        "prune_exponent": schedule.get("exponent", np.nan),
        "prune_period": schedule.get("period", np.nan),
        "micro_increment": p.micro_increment if cell.schedule == "micro" else np.nan,
        "max_sparsity_first_last": p.max_sparsity_first_last if pruned else np.nan,
        "prune_critic": bool(p.prune_critic and pruned),
        "capacity_of": cell.capacity_of,
        "hidden_sizes": " ".join(str(h) for h in cell_hidden_sizes(cfg, cell)),
    }


def _layer_targets(cfg: StudyConfig, cell, shapes: list[tuple[int, int]]) -> np.ndarray:
    """Per-layer target sparsity of a cell's allocation, [L]; NaN under global allocation."""
    if cell.sparsity == 0:
        return np.zeros(len(shapes))
    if cell.allocation == "global":
        return np.full(len(shapes), np.nan)
    caps = layer_caps(len(shapes), jnp.asarray(cfg.prune.max_sparsity_first_last, jnp.float32))
    index = jnp.asarray(ALLOCATIONS.index(cell.allocation))
    return 1.0 - np.asarray(layer_densities(shapes, jnp.asarray(cell.sparsity, jnp.float32), index, caps))


def layers_table(cfg: StudyConfig, cells: list, ts) -> pd.DataFrame:
    """One row per cell × network × layer (cell_id is the row index in `ts`; callers relabel)."""
    networks = [("policy", ts.masks)] + ([("critic", ts.critic_masks)] if ts.critic_masks else [])
    rows = []
    for network, masks in networks:
        achieved = np.asarray(jax.vmap(layer_sparsity)(masks))
        shapes = [tuple(m.shape[1:]) for m in masks]
        for i, cell in enumerate(cells):
            targets = _layer_targets(cfg, cell, shapes)
            for layer, (n_in, n_out) in enumerate(shapes):
                rows.append({"cell_id": i, "network": network, "layer": layer, "n_in": n_in, "n_out": n_out,
                             "weights": n_in * n_out, "sparsity_target": targets[layer],
                             "sparsity_achieved": achieved[i, layer]})
    return pd.DataFrame(rows)


def trajectory_table(metrics: dict) -> pd.DataFrame:
    """One row per cell × update from training metrics of shape [cells, num_updates]."""
    target = np.asarray(metrics["sparsity_target"])
    cells, updates = target.shape
    return pd.DataFrame({
        "cell_id": np.repeat(np.arange(cells), updates),
        "update": np.tile(np.arange(updates), cells),
        "sparsity_target": target.ravel(),
        "sparsity_achieved": np.asarray(metrics["sparsity_achieved"]).ravel(),
        "episode_return": np.asarray(metrics["episode_return"]).ravel(),
    })


def pruning_tables(cfg: StudyConfig, cells: list, ts, metrics: dict) -> dict[str, pd.DataFrame]:
    """The extra tables of a trained chunk, keyed by file name (without .csv), local cell ids."""
    return {"layers": layers_table(cfg, cells, ts), "sparsity_trajectory": trajectory_table(metrics)}
