"""The main job: train a sparsity × seed grid, evaluate it under attacks at every ε, certify it, and write
the results folder. `run_study` is the Python entry point behind `robustprune run`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from robustprune import SCHEMA_VERSION
from robustprune.certify_run import check_certificates
from robustprune.config import StudyConfig
from robustprune.envs import make_base_env
from robustprune.attack_eval import attack_budgets
from robustprune.attacks.threat import describe as describe_threat_model
from robustprune.evaluate import make_victim
from robustprune.checkpoint import save_tree
from robustprune.distributed import ProcessSettings, initialize
from robustprune.grid import Cell
from robustprune.pruning import achieved_sparsity, layer_sparsity
from robustprune.results import (
    config_hash,
    default_run_dir,
    device_info,
    git_commit,
    package_versions,
    prepare_run_dir,
    write_csv,
    write_json,
)

logger = logging.getLogger(__name__)

TV_TOLERANCE = 1e-6  # slack for float32 rounding when checking tv_empirical <= tv_bound


class SoundnessError(RuntimeError):
    """A measured TV exceeded a certified TV bound: a bug in an attack, an evaluation or a certificate."""


def cells_table(cfg: StudyConfig, cells: list[Cell], ts, metrics: dict) -> pd.DataFrame:
    """One row per cell: settings, target and achieved sparsity, and the final training return.

    Per-layer sparsity is in `sparsity_per_layer` (policy kernels in layer order, space-separated) and, with
    targets, in the long table layers.csv (`robustprune.pruning_tables`).
    """
    from robustprune.pruning_tables import cell_pruning_columns
    from robustprune.robust_grid import robust_columns

    achieved = np.asarray(jax.vmap(achieved_sparsity)(ts.masks))
    per_layer = np.asarray(jax.vmap(layer_sparsity)(ts.masks))
    critic = np.asarray(jax.vmap(achieved_sparsity)(ts.critic_masks)) if ts.critic_masks else None
    last = max(1, cfg.ppo.num_updates // 10)
    train_return = np.asarray(metrics["episode_return"][:, -last:].mean(axis=1))
    rows = []
    for i, c in enumerate(cells):  # i indexes this batch of cells; c.cell_id is the cell's id in the grid
        rows.append({
            "cell_id": c.cell_id,
            "env": cfg.env.name,
            "seed": c.seed,
            **cell_pruning_columns(cfg, c),
            **robust_columns(c),
            "sparsity_target": c.sparsity,
            "sparsity_achieved": achieved[i],
            "sparsity_per_layer": " ".join(f"{x:.4f}" for x in per_layer[i]),
            "critic_sparsity_achieved": np.nan if critic is None else critic[i],
            "train_return": train_return[i],
        })
    return pd.DataFrame(rows)


def evaluate_all(cfg: StudyConfig, victims, *, progress: bool = True, cells=None) -> tuple[pd.DataFrame, dict]:
    """Run every attack at every ε on every cell, then add the worst case over the attacks per cell and ε.

    Learned attacks are trained first (one batched program per kind). `cells` (the Cell list of the victims'
    leading axis) is needed by the shared_raw threat model and the transfer attacks. Returns the evaluations
    table (with `worst` rows naming their `worst_attack`) and timings per attack and per fitted kind.
    """
    from robustprune.attack_eval import evaluate_attack, fit_learned, prepare_victims, with_worst_case
    from robustprune.attacks import LEARNED_ATTACKS

    eps_all = jnp.asarray(cfg.eval.eps)
    key = jax.random.PRNGKey(10_000)  # evaluation key shared by all cells: common initial states
    victims = prepare_victims(cfg, victims, cells)
    rows, timings, fitted = [], {}, {}
    for attack in tqdm(cfg.eval.attacks, desc="evaluate", unit="attack", disable=not progress):
        eps_values = jnp.zeros(1) if attack == "none" else eps_all
        adversaries = None
        if attack in LEARNED_ATTACKS:
            adversaries = fit_learned(cfg, attack, victims, eps_values, fitted, timings, progress)
        result, _, timings[attack] = evaluate_attack(cfg, attack, victims, eps_values, key, adversaries)

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
    return with_worst_case(pd.DataFrame(rows)), timings


def certify_all(cfg: StudyConfig, victims, cells: list[Cell]) -> dict[str, pd.DataFrame]:
    """Certify every cell of a (padded) chunk: the `certificates` and `certificates_path` tables, local ids.

    Global and local (IBP) certificates at every ε, PGD and Jacobian lower bounds at visited states, and the
    post-training pruning path of dense cells (`robustprune.certify_run.certify_cells`).
    """
    from robustprune.attack_eval import prepare_victims
    from robustprune.certify_run import certify_cells

    return certify_cells(cfg, prepare_victims(cfg, victims, cells), cells)


def check_soundness(evaluations: pd.DataFrame, certificates: pd.DataFrame) -> None:
    """Raise SoundnessError if any measured TV exceeds a certified TV bound for the same cell and ε.

    Only bounds that hold at every state (`sound`, the global ones) are compared with the evaluations: the
    local (IBP) bounds hold at the certificates' visited states, which `certify_run.check_certificates` checks.
    """
    if "sound" in certificates:
        certificates = certificates[certificates["sound"].astype(bool)]
    merged = evaluations.merge(certificates, on=["cell_id", "eps", "norm"])
    bad = merged[merged.tv_empirical > merged.tv_bound + TV_TOLERANCE]
    if len(bad):
        raise SoundnessError(
            f"{len(bad)} evaluation rows have tv_empirical above a certified tv_bound, e.g.\n"
            + bad.head().to_string()
        )


def score_chunk(cfg: StudyConfig, cells: list[Cell], n_real: int, ts, metrics: dict, *, timings: dict,
                progress: bool = True) -> dict[str, pd.DataFrame]:
    """Evaluate and certify one trained (padded) chunk; tables keyed by global cell id, padding dropped.

    Diverged cells keep their rows with NaN metrics. `timings` accumulates evaluation and certify seconds.
    """
    from robustprune.pruning_tables import pruning_tables
    from robustprune.runner import relabel_chunk

    action_size = make_base_env(cfg.env.name, cfg.env.backend).action_size
    victims = make_victim(cfg, ts.params, ts.normalizer, action_size)
    local = [dataclasses.replace(c, cell_id=i) for i, c in enumerate(cells)]  # rows of ts; relabeled below
    cells_df = cells_table(cfg, local, ts, metrics)
    evaluations, eval_timings = evaluate_all(cfg, victims, progress=progress, cells=cells)
    start = time.perf_counter()
    certificates = certify_all(cfg, victims, cells)
    timings["certify_s"] = timings.get("certify_s", 0.0) + time.perf_counter() - start
    for attack, t in eval_timings.items():
        total = timings.setdefault("evaluate", {}).setdefault(attack, {"compile_s": 0.0, "run_s": 0.0})
        total["compile_s"] += t["compile_s"]
        total["run_s"] += t["run_s"]
    tables = {"cells": cells_df, "evaluations": evaluations, **certificates,
              **pruning_tables(cfg, local, ts, metrics)}
    tables = relabel_chunk(tables, cells, n_real, np.asarray(ts.diverged_at))
    check_soundness(tables["evaluations"], tables["certificates"])
    check_certificates(tables["certificates"], tables.get("certificates_path"))
    return tables


def run_study(cfg: StudyConfig, out_dir: str | Path | None = None, *, overwrite: bool = False,
              progress: bool = True, chunk_size: int | None = None, checkpoint_every: int | None = None,
              process: ProcessSettings | None = None, nan_at_update: dict | None = None) -> Path:
    """Train, evaluate, certify and save one study, chunk by chunk. Returns the run folder.

    Everything is validated before the first compile. Finished chunks are checkpointed with their results, so
    rerunning the same call on the same folder skips them and resumes unfinished training. With several
    processes (`process`), each writes its own shard under shards/host_<i>/ and `load_run` merges them.
    nan_at_update: {cell_id: update} debug faults that plant a NaN, for divergence tests.
    """
    from robustprune.runner import run_share, write_tables
    from robustprune.validate import shard_dir, validate_run

    out = Path(out_dir) if out_dir else default_run_dir(cfg)
    process = process or ProcessSettings()
    resumed = validate_run(cfg, out, overwrite=overwrite, chunk_size=chunk_size,
                           checkpoint_every=checkpoint_every, process=process)
    initialize(process)
    prepare_run_dir(out, cfg, overwrite=overwrite)
    logger.info("Study %s: %d cells, %d env steps per cell, writing to %s", cfg.name, cfg.num_cells,
                cfg.ppo.env_steps, out)
    wall_start = time.perf_counter()

    timings: dict = {}
    score = functools.partial(score_chunk, timings=timings, progress=progress)
    grid, layout = run_share(cfg, out, score, process=process, chunk_size=chunk_size, resumed_chunk_size=resumed,
                             checkpoint_every=checkpoint_every, progress=progress, nan_at_update=nan_at_update)
    single = process.num_processes == 1
    target = out if single else shard_dir(out, process.process_id)
    write_tables(target, grid.tables)
    save_tree(target / "checkpoints" / "final", grid.final)  # per process: no cross-host barrier
    if single:
        from robustprune.plots import write_certify_figures, write_figures, write_pruning_figures

        write_figures(out, grid.tables["cells"], grid.tables["evaluations"], grid.tables["certificates"])
        write_pruning_figures(out, grid.tables["cells"], grid.tables["evaluations"],
                              grid.tables["sparsity_trajectory"])
        write_certify_figures(out, grid.tables["cells"], grid.tables["evaluations"], grid.tables["certificates"],
                              grid.tables.get("certificates_path"))
    record = run_record(cfg, grid, timings, layout, time.perf_counter() - wall_start)
    record["timings"] = keep_finished_timings(target / "run.json", record["timings"], grid.chunks_run)
    write_json(target / "run.json", record)
    if not single and process.process_id == 0:
        write_json(out / "run.json", {k: v for k, v in record.items() if k != "timings"})
    logger.info("Wrote %s (%d chunks run, %d already finished and skipped, %d diverged cells)", target,
                grid.chunks_run, grid.chunks_skipped, grid.diverged_cells)
    return out


def keep_finished_timings(path: Path, timings: dict, chunks_run: int) -> dict:
    """Return the timings to record. A rerun that only skipped finished chunks keeps the earlier run.json's
    timings, which measured the work, and adds its own wall time as `rerun_wall_s`."""
    if chunks_run > 0 or not path.is_file():
        return timings
    try:
        earlier = json.loads(path.read_text()).get("timings")
    except (OSError, ValueError):
        return timings
    if not isinstance(earlier, dict):
        return timings
    return {**earlier, "rerun_wall_s": timings["wall_s"]}


def run_record(cfg: StudyConfig, grid, timings: dict, layout: dict, wall_seconds: float) -> dict:
    """The run.json contents: schema, config, versions, commit, devices and every timing."""
    from robustprune.certify_folder import certify_summary

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
                               "zero; biases and log-std are never pruned; the critic's kernels get their own "
                               "masks (same target and method) only when prune.prune_critic is true",
        "threat_model": describe_threat_model(cfg.attack.threat_model, cfg.eval.norm),
        "attack_budgets": attack_budgets(cfg),
        "certify": certify_summary(cfg, grid.tables["cells"], grid.tables["certificates"],
                                   grid.tables.get("certificates_path")),
        "grid": {**layout, "chunks_run": grid.chunks_run, "chunks_resumed": grid.chunks_skipped,
                 "diverged_cells": grid.diverged_cells},
        "timings": {
            "wall_s": wall_seconds,
            "train_compile_s": grid.compile_seconds + layout.get("memory_probe_compile_s", 0.0),
            "train_run_s": grid.run_seconds,
            "evaluate": timings.get("evaluate", {}),
            "certify_s": timings.get("certify_s", 0.0),
        },
    }
