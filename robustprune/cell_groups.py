"""Split a grid's cells by network shape, since hidden sizes are static and each shape is its own program.

Pruned and dense cells share the configured hidden sizes and so one compiled program, whatever their
sparsity, schedule, method or allocation (all traced). Capacity-control cells are dense networks with
narrower hidden layers: every distinct width is a separate program, trained after the main one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

from robustprune.config import ConfigError, StudyConfig
from robustprune.envs import make_base_env
from robustprune.pruning import kernel_shapes, max_feasible_sparsity

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=32)
def policy_io_sizes(env_name: str, backend: str) -> tuple[int, int]:
    """(observation size, action size) of an environment: the policy's input and output widths."""
    env = make_base_env(env_name, backend)
    return env.observation_size, env.action_size


def check_cap_feasible(cfg: StudyConfig) -> None:
    """Raise ConfigError when prune.max_sparsity_first_last makes some target sparsity unreachable."""
    p = cfg.prune
    if p.max_sparsity_first_last >= 1.0:
        return
    obs, act = policy_io_sizes(cfg.env.name, cfg.env.backend)
    limit = max_feasible_sparsity(kernel_shapes(obs, act, cfg.network.hidden_sizes), p.max_sparsity_first_last)
    if max(p.sparsities) > limit:
        raise ConfigError(
            f"prune.max_sparsity_first_last={p.max_sparsity_first_last} caps the first and last layers so that "
            f"at most {limit:.4f} of the policy's kernel weights can be pruned, below prune.sparsities maximum "
            f"{max(p.sparsities)}. Raise the cap or lower the sparsities."
        )


def cell_hidden_sizes(cfg: StudyConfig, cell) -> tuple[int, ...]:
    """Hidden sizes of a cell's networks: its own (capacity-control cells), else the configured ones."""
    return tuple(cfg.network.hidden_sizes) if cell.hidden_sizes is None else tuple(cell.hidden_sizes)


def network_groups(cfg: StudyConfig, cells: list) -> list[tuple[StudyConfig, list]]:
    """Cells grouped by hidden sizes and robust-training method (both static), each with its program's config
    (robust.methods set to the group's one method), configured shape first.

    Within a group cells keep their grid order; `cell_id`s are unchanged (global to the grid).
    """
    from robustprune.robust_grid import program_config

    groups: dict[tuple, list] = {}
    for cell in cells:
        groups.setdefault((cell_hidden_sizes(cfg, cell), cell.robust_method), []).append(cell)
    out = []
    for (sizes, method), members in groups.items():
        group_cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, hidden_sizes=sizes))
        out.append((program_config(group_cfg, method), members))
    if len(out) > 1:
        logger.info("Grid has %d network shapes or methods, trained as separate programs: %s", len(out),
                    ", ".join(f"{g.network.hidden_sizes} {g.robust.methods[0]} ({len(m)} cells)" for g, m in out))
    return out


def train_cell_groups(cfg: StudyConfig, cells: list, *, progress: bool = True) -> list[tuple[StudyConfig, list, object]]:
    """Train every network group of `cells` as its own program (`grid.train_grid`), configured shape first.

    Returns (group config, group cells, TrainOutput) per group. This is how capacity-control cells train.
    NOTE: `run_study` does not yet split a grid by network shape, so a study with prune.capacity_control
    stops with a ConfigError from `grid.cell_params` before compiling; train such grids with this function.
    """
    from robustprune.grid import cell_params, train_grid

    out = []
    for group_cfg, members in network_groups(cfg, cells):
        trained = train_grid(group_cfg, cell_params(group_cfg, members), progress=progress,
                             desc=f"train {group_cfg.network.hidden_sizes}")
        out.append((group_cfg, members, trained))
    return out
