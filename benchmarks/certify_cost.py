"""Time to certify a whole grid against the time to evaluate it under the attack suite.

Certifying covers every global bound, IBP at the visited states, PGD and Jacobian lower bounds at those states,
certified radii and the post-training path (`robustprune.certify_run`). Evaluating covers every
non-learned attack of the config at every ε. Both are timed as compile time and run time (a second call of
the compiled program). With --run-dir the trained cells of a run folder are used; without it, the default
preset's grid with freshly initialized policies (the cost does not depend on the weights' values).

Writes results/benchmarks/certify_cost.json. Usage:
  python benchmarks/certify_cost.py [--run-dir results/runs/default-xxxx] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from robustprune.attack_eval import evaluate_attack, prepare_victims
from robustprune.attacks import LEARNED_ATTACKS
from robustprune.certify_run import CERTIFY_KEY, certify_cells, certify_program
from robustprune.config import StudyConfig
from robustprune.envs import make_base_env
from robustprune.evaluate import make_victim
from robustprune.grid import cell_params, expand_cells
from robustprune.presets import get_preset
from robustprune.results import package_versions
from robustprune.train import init_train_state


def build(run_dir: str | None):
    """Return (config, victims with the threat model's ball scale, cells, source description)."""
    if run_dir is not None:
        from robustprune.certify_folder import load_final

        cfg = StudyConfig.from_dict(json.loads((Path(run_dir) / "run.json").read_text())["config"]).validate()
        groups = load_final(Path(run_dir), cfg)
        if len(groups) > 1:
            sys.exit("certify_cost.py times one network shape; this run has several (capacity-control cells).")
        cfg, cells, tree = groups[0]
        params, normalizer, source = tree["params"], tree["normalizer"], f"trained cells of {run_dir}"
    else:
        cfg = get_preset("default")
        cells = expand_cells(cfg)
        state = jax.jit(jax.vmap(lambda c: init_train_state(cfg, c)))(cell_params(cfg, cells))
        params, normalizer, source = state.params, state.normalizer, "default preset, initialized policies"
    action_size = make_base_env(cfg.env.name, cfg.env.backend).action_size
    victims = prepare_victims(cfg, make_victim(cfg, params, normalizer, action_size), cells)
    return cfg, victims, cells, source


def time_certify(cfg, victims, cells) -> dict:
    """Compile and run time of the certify program, and the run time of `certify_cells` with its tables."""
    eps, key = jnp.asarray(cfg.eval.eps), jax.random.PRNGKey(CERTIFY_KEY)
    start = time.perf_counter()
    compiled = certify_program(cfg).lower(victims, eps, key).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(victims, eps, key))
    run_s = time.perf_counter() - start
    certify_cells(cfg, victims, cells)  # warms the jit cache of certify_program
    start = time.perf_counter()
    certify_cells(cfg, victims, cells)
    return {"compile_s": compile_s, "run_s": run_s, "run_with_tables_s": time.perf_counter() - start}


def time_evaluate(cfg, victims) -> dict:
    """Compile and run time of every non-learned attack of the config, over all cells and ε."""
    key, out = jax.random.PRNGKey(10_000), {}
    for attack in cfg.eval.attacks:
        if attack in LEARNED_ATTACKS:
            continue
        eps = jnp.zeros(1) if attack == "none" else jnp.asarray(cfg.eval.eps)
        _, _, first = evaluate_attack(cfg, attack, victims, eps, key)
        _, _, second = evaluate_attack(cfg, attack, victims, eps, key)
        out[attack] = {"compile_s": first["compile_s"], "run_s": second["run_s"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None, help="run folder whose trained cells to time (default: none)")
    parser.add_argument("--out", default="results/benchmarks/certify_cost.json")
    args = parser.parse_args()
    cfg, victims, cells, source = build(args.run_dir)
    certify = time_certify(cfg, victims, cells)
    evaluate = time_evaluate(cfg, victims)
    evaluate_total = {key: sum(t[key] for t in evaluate.values()) for key in ("compile_s", "run_s")}
    record = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(),
                    "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()]},
        "versions": package_versions(),
        "setup": {"source": source, "env": cfg.env.name, "cells": len(cells), "eps": list(cfg.eval.eps),
                  "norm": cfg.eval.norm, "episodes": cfg.eval.episodes, "episode_length": cfg.eval.episode_length,
                  "attacks_timed": list(evaluate), "certify": cfg.to_dict()["certify"],
                  "states_per_cell": cfg.certify.rollout_envs * (cfg.certify.rollout_steps // cfg.certify.state_stride)},
        "certify": certify,
        "evaluate": {"per_attack": evaluate, "total": evaluate_total},
        "ratio_certify_to_evaluate": {
            "run": certify["run_with_tables_s"] / evaluate_total["run_s"],
            "compile_plus_run": (certify["compile_s"] + certify["run_with_tables_s"])
            / (evaluate_total["compile_s"] + evaluate_total["run_s"])},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
