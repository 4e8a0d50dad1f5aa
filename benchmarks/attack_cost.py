"""Cost of each attack per evaluated step relative to a clean rollout, and batched vs one-at-a-time training
of the learned adversaries of a grid.

Victims are freshly initialized networks (attack cost does not depend on training). Writes
results/benchmarks/attack_cost.json. Usage: python benchmarks/attack_cost.py [--cells 4] [--env inverted_pendulum]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from robustprune.attack_eval import evaluate_attack
from robustprune.attacks import LEARNED_ATTACKS
from robustprune.attacks.learned import fit_adversaries
from robustprune.config import AttackConfig
from robustprune.evaluate import make_victim
from robustprune.envs import make_base_env
from robustprune.presets import get_preset
from robustprune.train import init_train_state, make_cell_params, stack_cells


def build(env: str, cells: int):
    cfg = get_preset("default")
    cfg = dataclasses.replace(
        cfg,
        env=dataclasses.replace(cfg.env, name=env),
        eval=dataclasses.replace(cfg.eval, episodes=8, episode_length=100, eps=(0.1, 0.2)),
        attack=AttackConfig(rs_num_envs=32, rs_unroll_length=129, rs_epochs=4, adv_num_envs=32,
                            adv_unroll_length=16, adv_num_updates=10, adv_learning_rates=(1e-3,)),
    )
    cell_list = stack_cells([make_cell_params(cfg, 0.0, seed) for seed in range(cells)])
    ts = jax.jit(jax.vmap(lambda c: init_train_state(cfg, c)))(cell_list)
    normalizer = ts.normalizer.replace(m2=jnp.ones_like(ts.normalizer.m2), count=jnp.ones_like(ts.normalizer.count))
    victims = make_victim(cfg, ts.params, normalizer, make_base_env(env, cfg.env.backend).action_size)
    return cfg, victims


def attack_costs(cfg, victims) -> dict:
    """Run time (compile excluded) of every attack over the grid, divided by the clean rollout's."""
    eps, key, fitted, fit_timings = jnp.asarray(cfg.eval.eps), jax.random.PRNGKey(0), {}, {}
    out = {}
    for attack in ("none", "random", "critic", "mad", "robust_sarsa", "rs_mad", "sa_rl", "pa_ad"):
        adversaries = None
        if attack in LEARNED_ATTACKS:
            kind = LEARNED_ATTACKS[attack]
            if kind not in fitted:
                fitted[kind], info = fit_adversaries(cfg, kind, victims, eps, key, progress=False)
                fit_timings[kind] = info["fit_s"]
            adversaries = fitted[kind]
        _, _, timing = evaluate_attack(cfg, attack, victims, eps, key, adversaries)
        _, _, timing = evaluate_attack(cfg, attack, victims, eps, key, adversaries)  # cached compile: run time
        members = 1 if adversaries is None else jax.tree_util.tree_leaves(adversaries)[0].shape[2]
        out[attack] = {"run_s": timing["run_s"], "members_evaluated": members}
    clean = out["none"]["run_s"]
    for attack, record in out.items():
        record["cost_vs_clean_per_step"] = record["run_s"] / clean / record["members_evaluated"]
    return {"per_attack": out, "fit_s_batched_incl_compile": fit_timings}


def batched_vs_sequential(cfg, victims, kind: str) -> dict:
    """Train every (cell, ε) adversary of `kind` in one program, then one at a time."""
    eps, key = jnp.asarray(cfg.eval.eps), jax.random.PRNGKey(1)
    cells = victims.normalizer.mean.shape[0]
    start = time.perf_counter()
    fit_adversaries(cfg, kind, victims, eps, key, progress=False)
    batched = time.perf_counter() - start
    single = []
    for c in range(cells):
        victim = jax.tree_util.tree_map(lambda x: x[c:c + 1], victims)
        for e in range(eps.shape[0]):
            start = time.perf_counter()
            fit_adversaries(cfg, kind, victim, eps[e:e + 1], key, progress=False)
            single.append(time.perf_counter() - start)
    return {"adversaries": cells * eps.shape[0], "batched_s": batched, "one_at_a_time_s": sum(single),
            "one_at_a_time_first_call_s": single[0], "speedup": sum(single) / batched,
            "note": "every timing includes compilation; the one-at-a-time loop recompiles per call, as a naive "
                    "loop over fit_adversaries does"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--env", default="inverted_pendulum")
    parser.add_argument("--out", default="results/benchmarks/attack_cost.json")
    args = parser.parse_args()
    cfg, victims = build(args.env, args.cells)
    record = {
        "command": f"python benchmarks/attack_cost.py --cells {args.cells} --env {args.env}",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "devices": [str(d) for d in jax.devices()]},
        "setup": {"env": args.env, "cells": args.cells, "eps": list(cfg.eval.eps), "episodes": cfg.eval.episodes,
                  "episode_length": cfg.eval.episode_length, "pgd_steps": cfg.eval.pgd_steps,
                  "attack_config": dataclasses.asdict(cfg.attack)},
        "attack_cost": attack_costs(cfg, victims),
        "learned_training": {kind: batched_vs_sequential(cfg, victims, kind) for kind in ("sa_rl", "sarsa")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
