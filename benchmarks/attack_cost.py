"""Cost of each attack per evaluated step relative to a clean rollout, and batched vs one-at-a-time training
of the learned adversaries of a grid.

Victims are freshly initialized networks, because rollouts always run the full episode length, so an
attack's cost does not depend on how well the victim was trained.
Compile time is measured apart from run time through JAX's compile events. Writes
results/benchmarks/attack_cost.json.

Usage: python benchmarks/attack_cost.py [--cells 2] [--repeats 5] [--env inverted_pendulum]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import monitoring

from robustprune.attack_eval import attack_program
from robustprune.attacks import LEARNED_ATTACKS
from robustprune.attacks.learned import fit_adversaries
from robustprune.config import AttackConfig
from robustprune.envs import available_envs, make_base_env
from robustprune.evaluate import make_victim
from robustprune.presets import get_preset
from robustprune.train import init_train_state, make_cell_params, stack_cells

ATTACKS = ("none", "random", "critic", "mad", "robust_sarsa", "rs_mad", "sa_rl", "pa_ad")
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_compile_seconds = [0.0]


def _on_event(event: str, seconds: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _compile_seconds[0] += seconds


monitoring.register_event_duration_secs_listener(_on_event)


@contextlib.contextmanager
def clock():
    """Yield a dict that gets `total_s`, `compile_s` (tracing, lowering and XLA compile) and `run_s` (the rest)."""
    record, start, compiled = {}, time.perf_counter(), _compile_seconds[0]
    yield record
    record["total_s"] = time.perf_counter() - start
    record["compile_s"] = _compile_seconds[0] - compiled
    record["run_s"] = record["total_s"] - record["compile_s"]


def build(env: str, cells: int):
    """Build the default preset's evaluation with a reduced learned-attack budget, and `cells` fresh dense victims."""
    cfg = get_preset("default")
    cfg = dataclasses.replace(
        cfg,
        env=dataclasses.replace(cfg.env, name=env),
        eval=dataclasses.replace(cfg.eval, eps=(0.1, 0.2, 0.4)),
        attack=AttackConfig(rs_num_envs=32, rs_unroll_length=129, rs_epochs=4, adv_num_envs=32,
                            adv_unroll_length=16, adv_num_updates=20, adv_learning_rates=(1e-3,)),
    )
    cell_list = stack_cells([make_cell_params(cfg, 0.0, seed) for seed in range(cells)])
    ts = jax.jit(jax.vmap(lambda c: init_train_state(cfg, c)))(cell_list)
    normalizer = ts.normalizer.replace(m2=jnp.ones_like(ts.normalizer.m2), count=jnp.ones_like(ts.normalizer.count))
    victims = make_victim(cfg, ts.params, normalizer, make_base_env(env, cfg.env.backend).action_size)
    return cfg, victims


def attack_costs(cfg, victims, repeats: int) -> dict:
    """Time every attack over the grid (median run, compile excluded), per member, relative to the clean rollout."""
    eps, key, fitted, out = jnp.asarray(cfg.eval.eps), jax.random.PRNGKey(0), {}, {}
    for attack in ATTACKS:
        adversaries = None
        if attack in LEARNED_ATTACKS:
            kind = LEARNED_ATTACKS[attack]
            if kind not in fitted:
                fitted[kind], _ = fit_adversaries(cfg, kind, victims, eps, key, progress=False)
            adversaries = fitted[kind]
        args = (victims, eps, key) + ((adversaries,) if adversaries is not None else ())
        compiled = attack_program(cfg, attack, adversaries is not None).lower(*args).compile()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            runs.append(time.perf_counter() - start)
        members = 1 if adversaries is None else jax.tree_util.tree_leaves(adversaries)[0].shape[2]
        out[attack] = {"run_s_median": statistics.median(runs), "run_s_all": runs, "members_evaluated": members}
    clean = out["none"]["run_s_median"]
    for record in out.values():
        record["cost_vs_clean_per_step"] = record["run_s_median"] / clean / record["members_evaluated"]
    return out


def batched_vs_sequential(cfg, victims, kind: str) -> dict:
    """Train every (cell, ε) adversary of `kind` in one program, then one at a time, each in its own program."""
    eps, key = jnp.asarray(cfg.eval.eps), jax.random.PRNGKey(1)
    cells = victims.normalizer.mean.shape[0]
    with clock() as batched:
        jax.block_until_ready(fit_adversaries(cfg, kind, victims, eps, key, progress=False)[0])
    single = []
    for c in range(cells):
        victim = jax.tree_util.tree_map(lambda x: x[c:c + 1], victims)
        for e in range(eps.shape[0]):
            with clock() as one:
                jax.block_until_ready(fit_adversaries(cfg, kind, victim, eps[e:e + 1], key, progress=False)[0])
            single.append(one)
    total = {name: sum(s[name] for s in single) for name in ("total_s", "compile_s", "run_s")}
    return {
        "adversaries": cells * eps.shape[0] * (1 if kind == "sarsa" else len(cfg.attack.adv_learning_rates)),
        "batched": batched, "one_at_a_time": total,
        "speedup_incl_compile": total["total_s"] / batched["total_s"],
        "speedup_run_only": total["run_s"] / batched["run_s"],
        "note": "one at a time, every call builds and compiles its own program, as a loop over fit_adversaries "
                "does; run_only removes compile time from both sides. Robust Sarsa's Q-functions do not depend "
                "on ε, so its one-at-a-time loop refits the same cell per ε.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2, help="victim cells (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per attack; the median is kept")
    parser.add_argument("--env", default="inverted_pendulum")
    parser.add_argument("--out", default="results/benchmarks/attack_cost.json")
    args = parser.parse_args()
    for name, value in (("--cells", args.cells), ("--repeats", args.repeats)):
        if value < 1:
            parser.error(f"{name}={value} is invalid: use 1 or more.")
    if args.env not in available_envs():
        parser.error(f"--env={args.env!r} is not a known environment. Use one of: {', '.join(available_envs())}.")
    cfg, victims = build(args.env, args.cells)
    record = {
        "command": f"python benchmarks/attack_cost.py --cells {args.cells} --repeats {args.repeats} --env {args.env}",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "devices": [str(d) for d in jax.devices()], "jax": jax.__version__},
        "setup": {"env": args.env, "cells": args.cells, "eps": list(cfg.eval.eps), "episodes": cfg.eval.episodes,
                  "episode_length": cfg.eval.episode_length, "pgd_steps": cfg.eval.pgd_steps,
                  "attack_config": dataclasses.asdict(cfg.attack)},
        "attack_cost": attack_costs(cfg, victims, args.repeats),
        "learned_training": {kind: batched_vs_sequential(cfg, victims, kind) for kind in ("sa_rl", "pa_ad", "sarsa")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
