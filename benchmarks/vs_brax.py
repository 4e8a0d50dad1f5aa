"""Compare robustprune's PPO trainer with Brax's own PPO trainer (`brax.training.agents.ppo.train`).

    python benchmarks/vs_brax.py [--cells 8] [--updates 100] [--episodes 32]

Both train inverted_pendulum (spring backend, 200-step episodes) with the `default` preset's PPO settings:
the same env steps, batch, minibatches, epochs, initial learning rate, discount, GAE λ, clip range, gradient
clip and reward scale, and 64×64 tanh policy and value networks. `brax_mapping` below maps robustprune's
settings onto Brax's arguments and lists what still differs. Both run in one process and measure:

  (a) one dense robustprune cell against one Brax run (seed 0);
  (b) `--cells` dense cells (seeds 0..N−1) in one robustprune program against N sequential Brax runs.

Times are reported with and without compile. robustprune reports compile and run apart (`train_grid`).
Brax compiles inside its first training epoch. So Brax runs as many epochs as robustprune has segments
(`num_evals` = epochs + 1, `run_evals=False`), its progress_fn reports each epoch's wall time, and the
compile time is estimated as the first epoch's time minus the median of the others.

Returns reached: the mean undiscounted return of `--episodes` deterministic 200-step episodes per trained
policy, with one evaluator and the same initial states for both trainers. Targets (recorded, not asserted):
(a) robustprune ≥ 0.9× Brax's env steps/s excluding compile; (b) N cells ≥ 3× faster than N Brax runs
including compile. Writes results/benchmarks/vs_brax.json.

Brax 0.14.2 calls `jax.device_put_replicated`, which jax 0.10 no longer exports, so `install_replicate_shim`
supplies an equivalent. Timings on a shared CPU are noisy, so the record contains the load average before and
after the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import time

import robustprune  # noqa: F401  (sets robustprune's XLA CPU flags before JAX starts, for both trainers)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import linen  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from grid_common import record  # noqa: E402
from robustprune.config import ConfigError, StudyConfig  # noqa: E402
from robustprune.envs import make_base_env, make_eval_env  # noqa: E402
from robustprune.evaluate import make_victim  # noqa: E402
from robustprune.grid import cell_params, expand_cells, segment_length, train_grid  # noqa: E402
from robustprune.presets import get_preset  # noqa: E402

BRAX_AXIS = "i"  # The axis name of Brax's PPO pmap. Replicated training state must be sharded over it.
SHIM = ("jax.device_put_replicated(x, devices) := jax.device_put(jnp.stack([leaf] * len(devices)), "
        "NamedSharding(Mesh(devices, ('i',)), PartitionSpec('i'))) for every leaf")


def install_replicate_shim() -> str:
    """Add a `device_put_replicated` to jax for Brax's trainers when jax lacks one, and describe the shim.

    The replacement stacks each leaf len(devices) times along a new leading axis and shards that axis over a
    1-D mesh named like Brax's pmap axis ('i'), so the pmapped training epoch receives inputs already laid out
    as it wants them. With another axis name (jax's internal version uses its own), the first two epochs see
    differently sharded inputs, and the second compiles the whole epoch again.
    """
    if hasattr(jax, "device_put_replicated"):
        return "none: jax provides device_put_replicated"

    def device_put_replicated(tree, devices):
        sharding = NamedSharding(Mesh(np.asarray(devices), (BRAX_AXIS,)), PartitionSpec(BRAX_AXIS))
        return jax.tree_util.tree_map(
            lambda leaf: jax.device_put(jnp.stack([jnp.asarray(leaf)] * len(devices)), sharding), tree)

    jax.device_put_replicated = device_put_replicated
    return SHIM


def shared_config(cells: int, updates: int | None) -> StudyConfig:
    """Reduce the `default` preset to dense cells with seeds 0..cells−1, keeping its PPO settings."""
    cfg = get_preset("default")
    ppo = cfg.ppo if updates is None else dataclasses.replace(cfg.ppo, num_updates=updates)
    return dataclasses.replace(cfg, ppo=ppo, prune=dataclasses.replace(cfg.prune, sparsities=(0.0,)),
                               seeds=tuple(range(cells)))


def brax_mapping(cfg: StudyConfig) -> tuple[dict, dict]:
    """Return Brax `ppo.train` keyword arguments equal to cfg's PPO settings, and the mapping rules.

    Brax collects batch_size × num_minibatches / num_envs unrolls of unroll_length steps from num_envs
    environments per training step, and splits them into num_minibatches minibatches of batch_size
    trajectories. With batch_size = num_envs / num_minibatches it collects one unroll per step, as
    robustprune does, and each minibatch contains num_envs × unroll_length / num_minibatches transitions.
    """
    p = cfg.ppo
    if p.num_envs % p.num_minibatches:
        raise ConfigError(
            f"ppo.num_minibatches={p.num_minibatches} does not divide ppo.num_envs={p.num_envs}, so no Brax "
            "batch_size collects one unroll per update. Choose num_minibatches dividing num_envs.")
    kwargs = dict(
        num_timesteps=p.env_steps, episode_length=cfg.env.episode_length, action_repeat=cfg.env.action_repeat,
        num_envs=p.num_envs, unroll_length=p.unroll_length, batch_size=p.num_envs // p.num_minibatches,
        num_minibatches=p.num_minibatches, num_updates_per_batch=p.update_epochs, learning_rate=p.learning_rate,
        discounting=p.gamma, gae_lambda=p.gae_lambda, clipping_epsilon=p.clip_eps, max_grad_norm=p.max_grad_norm,
        reward_scaling=p.reward_scale, vf_loss_coefficient=p.value_coef, entropy_cost=0.0,
        normalize_observations=True, normalize_advantage=True,
    )
    rules = {
        "num_timesteps": "ppo.env_steps = num_envs × unroll_length × num_updates",
        "batch_size": "ppo.num_envs / ppo.num_minibatches (trajectories per minibatch; Brax steps per training "
                      "step = batch_size × unroll_length × num_minibatches = ppo.batch_size)",
        "num_updates_per_batch": "ppo.update_epochs",
        "num_evals": "1 + number of robustprune segments (one Brax epoch per segment, for per-epoch timings; one "
                     "per update when there is a single segment)",
        "vf_loss_coefficient": "ppo.value_coef (both value losses are 0.5 × coefficient × mean squared error)",
        "entropy_cost": "0 (robustprune's loss has no entropy term)",
        "network_factory": "make_ppo_networks with policy and value hidden sizes network.hidden_sizes and "
                           "activation tanh",
        "not matched": [
            "learning rate: robustprune anneals it linearly to 0; Brax 0.14.2 has no such schedule (constant)",
            "Adam eps: robustprune 1e-5, Brax optax default 1e-8",
            "policy: robustprune Gaussian with state-independent log-std, actions clipped to [-1, 1]; Brax "
            "tanh-squashed Gaussian with a learned scalar std (its default)",
            "GAE: robustprune computes advantages once per update from the rollout's values; Brax recomputes "
            "them in every minibatch loss with the current value network",
            "shuffling: robustprune shuffles single transitions; Brax shuffles whole 32-step trajectories",
            "observation normalization: robustprune updates its statistics after the SGD epochs and clips "
            "normalized observations to ±10; Brax updates before SGD and does not clip",
            "robustprune applies (all-ones) pruning masks and the pruning schedule even in dense cells",
        ],
    }
    return kwargs, rules


def brax_network_factory(cfg: StudyConfig):
    from brax.training.agents.ppo import networks as ppo_networks

    sizes = tuple(cfg.network.hidden_sizes)
    return functools.partial(ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=sizes,
                             value_hidden_layer_sizes=sizes, activation=linen.tanh)


def make_evaluator(cfg: StudyConfig, act_fn, episodes: int):
    """Build a jitted `evaluate(params, key) -> returns [episodes]`: deterministic, undiscounted, no auto-reset.

    act_fn(params, raw obs [episodes, obs]) -> action [episodes, act] in [−1, 1]. Steps after an episode ends
    do not count. With the same key, every policy starts from the same states.
    """
    env = make_eval_env(cfg.env.name, cfg.env.backend, cfg.eval.episode_length, cfg.env.action_repeat)

    def evaluate(params, key):
        def step(carry, _):
            state, returns, alive = carry
            state = env.step(state, act_fn(params, state.obs))
            return (state, returns + state.reward * alive, alive * (1.0 - state.done)), None

        state = env.reset(jax.random.split(key, episodes))
        init = (state, jnp.zeros(episodes), jnp.ones(episodes))
        (_, returns, _), _ = jax.lax.scan(step, init, None, cfg.eval.episode_length)
        return returns

    return jax.jit(evaluate)


def robustprune_returns(cfg: StudyConfig, state, episodes: int, key) -> list[float]:
    """Evaluate every cell of a trained batch (leading cell axis of `state`), returning each cell's mean."""
    action_size = make_base_env(cfg.env.name, cfg.env.backend).action_size

    def act(cell, raw_obs):
        victim = make_victim(cfg, cell["params"], cell["normalizer"], action_size)
        return jnp.clip(victim.action(victim.normalizer.normalize(raw_obs)), -1.0, 1.0)

    evaluate = make_evaluator(cfg, act, episodes)
    cells = {"params": state.params, "normalizer": state.normalizer}
    returns = jax.vmap(evaluate, in_axes=(0, None))(cells, key)
    return [float(r) for r in np.asarray(returns).mean(axis=1)]


def run_robustprune(cfg: StudyConfig, episodes: int, key) -> dict:
    """Train every cell of cfg in one program and evaluate each. Timings are in seconds."""
    start = time.perf_counter()
    out = train_grid(cfg, cell_params(cfg, expand_cells(cfg)), progress=False)
    wall = time.perf_counter() - start
    steps = len(cfg.seeds) * cfg.ppo.env_steps
    last = out.metrics["episode_return"][:, -10:]
    return {
        "cells": len(cfg.seeds),
        "env_steps": steps,
        "compile_s": out.compile_seconds,
        "run_s": out.run_seconds,
        "total_s_including_compile": wall,
        "env_steps_per_s_excluding_compile": steps / out.run_seconds,
        "env_steps_per_s_including_compile": steps / wall,
        "eval_return_per_cell": robustprune_returns(cfg, out.state, episodes, key),
        "train_return_last_10_updates_per_cell": [float(r) for r in np.nanmean(last, axis=1)],
    }


def brax_epochs(num_updates: int) -> int:
    """Count Brax training epochs: one per robustprune segment, or one per update when there is a single
    segment, because the compile estimate needs at least two epochs."""
    segments = num_updates // segment_length(num_updates)
    return segments if segments > 1 else num_updates


def brax_epoch_times(walltimes: list[float]) -> tuple[list[float], float]:
    """Split Brax's cumulative `training/walltime` into per-epoch seconds, and estimate compile seconds.

    The estimate is the first epoch's time minus the median of the later ones, and 0 for a single epoch.
    """
    epochs = [float(t) for t in np.diff([0.0, *walltimes])]
    if len(epochs) < 2:
        return epochs, 0.0
    return epochs, max(0.0, epochs[0] - float(np.median(epochs[1:])))


def run_brax(cfg: StudyConfig, seed: int, evaluate, key) -> dict:
    """Run `brax.training.agents.ppo.train` once with cfg's settings and evaluate it. Timings are in seconds."""
    from brax.training.agents.ppo import train as brax_ppo

    kwargs, _ = brax_mapping(cfg)
    walltimes = []

    def progress(step, metrics):
        walltimes.append(float(metrics["training/walltime"]))

    start = time.perf_counter()
    _, params, _ = brax_ppo.train(
        environment=make_base_env(cfg.env.name, cfg.env.backend), seed=seed,
        num_evals=brax_epochs(cfg.ppo.num_updates) + 1, run_evals=False, progress_fn=progress,
        network_factory=brax_network_factory(cfg), **kwargs)
    wall = time.perf_counter() - start
    epochs, compile_s = brax_epoch_times(walltimes)
    run_s = sum(epochs) - compile_s
    steps = cfg.ppo.env_steps
    return {
        "seed": seed,
        "env_steps": steps,
        "epoch_s": epochs,
        "compile_s_estimate": compile_s,
        "run_s_excluding_compile": run_s,
        "total_s_including_compile": wall,
        "outside_epochs_s": wall - sum(epochs),
        "env_steps_per_s_excluding_compile": steps / run_s,
        "env_steps_per_s_later_epochs": steps * (len(epochs) - 1) / len(epochs) / sum(epochs[1:])
        if len(epochs) > 1 else None,
        "env_steps_per_s_including_compile": steps / wall,
        "eval_return": float(np.mean(np.asarray(evaluate(params, key)))),
    }


def brax_evaluator(cfg: StudyConfig, episodes: int):
    """Build the shared evaluator for Brax's (normalizer, policy, value) params, acting with tanh(mean)."""
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import networks as ppo_networks

    env = make_base_env(cfg.env.name, cfg.env.backend)
    network = brax_network_factory(cfg)(env.observation_size, env.action_size,
                                          preprocess_observations_fn=running_statistics.normalize)
    make_policy = ppo_networks.make_inference_fn(network)

    def act(params, raw_obs):
        return make_policy(params, deterministic=True)(raw_obs, jax.random.PRNGKey(0))[0]

    return make_evaluator(cfg, act, episodes)


def machine_record() -> dict:
    """Describe the machine: CPU model and core counts from the OS, XLA flags in force, and JAX devices."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "devices": [str(d) for d in jax.devices()]}


def compare(rp_one: dict, rp_grid: dict, brax_runs: list[dict], loop_s: float) -> dict:
    """Compute speed ratios (above 1: robustprune is faster) and mean returns for (a) and (b)."""
    first = brax_runs[0]
    brax_total = sum(r["total_s_including_compile"] for r in brax_runs)
    brax_run = sum(r["run_s_excluding_compile"] for r in brax_runs)
    brax_returns = [r["eval_return"] for r in brax_runs]
    return {
        "a_single": {
            "speed_ratio_excluding_compile": rp_one["env_steps_per_s_excluding_compile"]
            / first["env_steps_per_s_excluding_compile"],
            "speed_ratio_including_compile": first["total_s_including_compile"] / rp_one["total_s_including_compile"],
            "eval_return_robustprune": rp_one["eval_return_per_cell"][0],
            "eval_return_brax": first["eval_return"],
        },
        "b_grid": {
            "cells": rp_grid["cells"],
            "robustprune_total_s_including_compile": rp_grid["total_s_including_compile"],
            "robustprune_run_s_excluding_compile": rp_grid["run_s"],
            "brax_total_s_including_compile": brax_total,
            "brax_run_s_excluding_compile": brax_run,
            "brax_loop_wall_s": loop_s,
            "speedup_including_compile": brax_total / rp_grid["total_s_including_compile"],
            "speedup_excluding_compile": brax_run / rp_grid["run_s"],
            "eval_return_robustprune_mean": float(np.mean(rp_grid["eval_return_per_cell"])),
            "eval_return_brax_mean": float(np.mean(brax_returns)),
            "eval_return_robustprune_min_max": [min(rp_grid["eval_return_per_cell"]),
                                                max(rp_grid["eval_return_per_cell"])],
            "eval_return_brax_min_max": [min(brax_returns), max(brax_returns)],
        },
    }


def targets(summary: dict) -> dict:
    """Check the two speed targets against the summary (recorded, not asserted)."""
    a = summary["a_single"]["speed_ratio_excluding_compile"]
    b = summary["b_grid"]["speedup_including_compile"]
    return {
        "a_single_cell_env_steps_per_s_at_least_0.9x_brax_excluding_compile":
            {"value": float(a), "met": bool(a >= 0.9)},
        "b_grid_at_least_3x_faster_than_sequential_brax_including_compile":
            {"value": float(b), "met": bool(b >= 3.0)},
    }


def main() -> None:
    from tqdm.auto import tqdm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8, help="cells in (b), and the number of Brax runs")
    parser.add_argument("--updates", type=int, default=None, help="PPO updates per cell (default: the preset's)")
    parser.add_argument("--episodes", type=int, default=32, help="evaluation episodes per trained policy")
    parser.add_argument("--name", default="vs_brax", help="record name under results/benchmarks/")
    args = parser.parse_args()
    if args.cells < 1 or args.episodes < 1:
        raise ConfigError(f"--cells={args.cells} or --episodes={args.episodes} is invalid: both must be at least 1, "
                          "e.g. --cells 8 --episodes 32.")

    load_before = os.getloadavg()
    shim = install_replicate_shim()
    single, grid = shared_config(1, args.updates), shared_config(args.cells, args.updates)
    kwargs, rules = brax_mapping(grid)
    key = jax.random.PRNGKey(12345)  # Every policy is evaluated from the same initial states.

    print("robustprune: 1 cell, then", args.cells, "cells in one program", flush=True)
    rp_one = run_robustprune(single, args.episodes, key)
    rp_grid = run_robustprune(grid, args.episodes, key)

    evaluate = brax_evaluator(grid, args.episodes)
    start = time.perf_counter()
    brax_runs = [run_brax(grid, seed, evaluate, key) for seed in tqdm(range(args.cells), desc="brax runs")]
    loop_s = time.perf_counter() - start  # This includes evaluations, which the per-run timings exclude.

    summary = compare(rp_one, rp_grid, brax_runs, loop_s)
    record(args.name, {
        "setup": {"env": grid.env.name, "backend": grid.env.backend, "episode_length": grid.env.episode_length,
                  "preset": "default (dense cells only)", "ppo": dataclasses.asdict(grid.ppo),
                  "network": dataclasses.asdict(grid.network), "env_steps_per_cell": grid.ppo.env_steps,
                  "segments": grid.ppo.num_updates // segment_length(grid.ppo.num_updates),
                  "eval_episodes": args.episodes},
        "brax_shim": shim,
        "brax_kwargs": {**kwargs, "num_evals": brax_epochs(grid.ppo.num_updates) + 1,
                        "run_evals": False, "network_factory": "see mapping"},
        "mapping": rules,
        "machine": {**machine_record(), "load_average_before": list(load_before),
                    "load_average_after": list(os.getloadavg()),
                    "note": "2-core CPU shared with other engineers' jobs; one run, so timings are noisy"},
        "robustprune": {"single": rp_one, "grid": rp_grid},
        "brax": brax_runs,
        "results": {**summary, "targets": targets(summary)},
    })


if __name__ == "__main__":
    main()
