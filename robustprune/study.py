"""The main job: train a sparsity × seed grid, evaluate it under attacks at every ε, certify it, and write
the results folder. `run_study` is the Python entry point behind `robustprune run`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from robustprune import SCHEMA_VERSION
from robustprune.certify import BOUNDS, gaussian_lipschitz_bounds, gaussian_tv_bound
from robustprune.config import StudyConfig
from robustprune.envs import make_base_env
from robustprune.evaluate import evaluate_grid, make_victim
from robustprune.grid import Cell, cell_params, expand_cells, train_grid
from robustprune.networks import mean_kernels
from robustprune.pruning import achieved_sparsity, layer_sparsity
from robustprune.results import (
    config_hash,
    default_run_dir,
    device_info,
    git_commit,
    package_versions,
    prepare_run_dir,
    save_checkpoint,
    write_csv,
    write_json,
)

logger = logging.getLogger(__name__)

TV_TOLERANCE = 1e-6  # slack for float32 rounding when checking tv_empirical <= tv_bound


class SoundnessError(RuntimeError):
    """A measured TV exceeded a certified TV bound: a bug in an attack, an evaluation or a certificate."""


def cells_table(cfg: StudyConfig, cells: list[Cell], ts, metrics: dict) -> pd.DataFrame:
    """One row per cell: settings, target and achieved sparsity, and the final training return."""
    achieved = np.asarray(jax.vmap(achieved_sparsity)(ts.masks))
    per_layer = np.asarray(jax.vmap(layer_sparsity)(ts.masks))
    last = max(1, cfg.ppo.num_updates // 10)
    train_return = np.asarray(metrics["episode_return"][:, -last:].mean(axis=1))
    rows = []
    for c in cells:
        rows.append({
            "cell_id": c.cell_id,
            "env": cfg.env.name,
            "seed": c.seed,
            "schedule": cfg.prune.schedule,
            "sparsity_target": c.sparsity,
            "sparsity_achieved": achieved[c.cell_id],
            "sparsity_per_layer": " ".join(f"{x:.4f}" for x in per_layer[c.cell_id]),
            "train_return": train_return[c.cell_id],
        })
    return pd.DataFrame(rows)


def evaluate_all(cfg: StudyConfig, victims, *, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Run every attack at every ε on every cell. Returns the evaluations table and timings per attack."""
    eps_all = jnp.asarray(cfg.eval.eps)
    key = jax.random.PRNGKey(10_000)  # evaluation key shared by all cells: common initial states
    rows, timings = [], {}
    for attack in tqdm(cfg.eval.attacks, desc="evaluate", unit="attack", disable=not progress):
        eps_values = jnp.zeros(1) if attack == "none" else eps_all
        fn = jax.jit(lambda v, e, k, attack=attack: evaluate_grid(cfg, attack, v, e, k))
        start = time.perf_counter()
        compiled = fn.lower(victims, eps_values, key).compile()
        mid = time.perf_counter()
        result = jax.device_get(compiled(victims, eps_values, key))
        timings[attack] = {"compile_s": mid - start, "run_s": time.perf_counter() - mid}

        worst = float(np.max(result.violation))
        if worst > 1e-5:
            raise SoundnessError(f"attack {attack!r} left its {cfg.eval.norm} ball by {worst:.3g} (> 1e-5).")
        for cell_id in range(result.returns.shape[0]):
            for j, eps in enumerate(np.asarray(eps_values)):
                returns = result.returns[cell_id, j]
                rows.append({
                    "cell_id": cell_id,
                    "attack": attack,
                    "norm": cfg.eval.norm,
                    "eps": float(eps),
                    "episodes": cfg.eval.episodes,
                    "return_mean": float(np.mean(returns)),
                    "return_std": float(np.std(returns)),
                    "tv_empirical": float(result.tv_max[cell_id, j]),
                })
        logger.info("Evaluated attack %s: %.1f s (compile %.1f s)", attack, timings[attack]["run_s"],
                    timings[attack]["compile_s"])
    return pd.DataFrame(rows), timings


def certify_all(cfg: StudyConfig, params) -> pd.DataFrame:
    """Global certificates of every cell's masked mean network at every ε (one row per cell × bound × ε)."""
    num_hidden = len(cfg.network.hidden_sizes)

    def bounds_of(policy_params):
        kernels = mean_kernels(policy_params, num_hidden)
        log_std = policy_params["params"]["log_std"]
        return gaussian_lipschitz_bounds(kernels, log_std, activation=cfg.network.activation, norm=cfg.eval.norm)

    lipschitz = jax.device_get(jax.jit(jax.vmap(bounds_of))(params["policy"]))
    rows = []
    for name, values in lipschitz.items():
        for cell_id, value in enumerate(np.asarray(values)):
            for eps in cfg.eval.eps:
                rows.append({
                    "cell_id": cell_id,
                    "bound": name,
                    "norm": cfg.eval.norm,
                    "eps": float(eps),
                    "lipschitz": float(value),
                    "monotone": BOUNDS[name].monotone,
                    "tv_bound": float(gaussian_tv_bound(eps, value)),
                })
    return pd.DataFrame(rows)


def check_soundness(evaluations: pd.DataFrame, certificates: pd.DataFrame) -> None:
    """Raise SoundnessError if any measured TV exceeds a certified TV bound for the same cell and ε."""
    merged = evaluations.merge(certificates, on=["cell_id", "eps", "norm"])
    bad = merged[merged.tv_empirical > merged.tv_bound + TV_TOLERANCE]
    if len(bad):
        raise SoundnessError(
            f"{len(bad)} evaluation rows have tv_empirical above a certified tv_bound, e.g.\n"
            + bad.head().to_string()
        )


def run_study(cfg: StudyConfig, out_dir: str | Path | None = None, *, overwrite: bool = False,
              progress: bool = True) -> Path:
    """Train, evaluate, certify and save one study. Returns the run folder."""
    cfg.validate()
    out = Path(out_dir) if out_dir else default_run_dir(cfg)
    prepare_run_dir(out, cfg, overwrite=overwrite)
    logger.info("Study %s: %d cells, %d env steps per cell, writing to %s", cfg.name, cfg.num_cells,
                cfg.ppo.env_steps, out)
    wall_start = time.perf_counter()

    cells = expand_cells(cfg)
    trained = train_grid(cfg, cell_params(cfg, cells), progress=progress)
    ts = trained.state
    action_size = make_base_env(cfg.env.name, cfg.env.backend).action_size
    victims = make_victim(cfg, ts.params, ts.normalizer, action_size)

    cells_df = cells_table(cfg, cells, ts, trained.metrics)
    evaluations, eval_timings = evaluate_all(cfg, victims, progress=progress)
    start = time.perf_counter()
    certificates = certify_all(cfg, ts.params)
    certify_seconds = time.perf_counter() - start
    check_soundness(evaluations, certificates)

    write_csv(out / "cells.csv", cells_df)
    write_csv(out / "evaluations.csv", evaluations)
    write_csv(out / "certificates.csv", certificates)
    save_checkpoint(out / "checkpoints" / "final",
                    {"params": ts.params, "masks": ts.masks, "normalizer": ts.normalizer})
    from robustprune.plots import write_figures

    write_figures(out, cells_df, evaluations, certificates)
    write_json(out / "run.json", run_record(cfg, trained, eval_timings, certify_seconds,
                                            time.perf_counter() - wall_start))
    logger.info("Wrote %s", out)
    return out


def run_record(cfg: StudyConfig, trained, eval_timings: dict, certify_seconds: float, wall_seconds: float) -> dict:
    """The run.json contents: schema, config, versions, commit, devices and every timing."""
    horizon = cfg.eval.episode_length
    return {
        "schema_version": SCHEMA_VERSION,
        "config_hash": config_hash(cfg),
        "config": cfg.to_dict(),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "devices": device_info(),
        "evaluation_horizon": horizon,
        "max_return": horizon * cfg.env.reward_per_step_max,
        "protocol_departure": cfg.notes,
        "sparsity_definition": "fraction of prunable weights (policy mean-network kernels) that are exactly "
                               "zero; biases, log-std and critic are not pruned",
        "threat_model": f"{cfg.eval.norm} ball of radius eps in each cell's own normalized observation units",
        "timings": {
            "wall_s": wall_seconds,
            "train_compile_s": trained.compile_seconds,
            "train_run_s": trained.run_seconds,
            "evaluate": eval_timings,
            "certify_s": certify_seconds,
        },
    }
