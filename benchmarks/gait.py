"""Check that a locomotion run's policies walk: deterministic episode length and forward distance per cell.

A return alone cannot tell a gait from a dive: hopper earns about 3 per step while it moves forward fast, so a
policy that falls after 150 steps can score like one that stands for 450. This script restores a run folder's
trained cells and runs clean deterministic episodes and MAD and critic attacks at the run's ε. Per cell it
records the mean return, the mean episode length (steps before termination) and the mean forward distance
of the torso (x of the first body). It writes gait.json into the run folder, or to --out.

Usage: python benchmarks/gait.py RUN_DIR [--episodes 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from robustprune.attacks import ATTACKS, settings_from_config
from robustprune.certify_folder import load_final
from robustprune.config import ConfigError, StudyConfig
from robustprune.envs import make_base_env, make_eval_env
from robustprune.evaluate import make_victim

GAIT_ATTACKS = ("none", "critic", "mad")
LOCOMOTION_ENVS = ("hopper", "walker2d", "halfcheetah", "ant", "humanoid")
logger = logging.getLogger(__name__)


def gait_rollout(cfg: StudyConfig, attack: str, victim, eps, key, episodes: int) -> dict:
    """Roll out `episodes` deterministic episodes under `attack` at radius ε (scalar).

    Returns {"return", "length", "distance"}, each [episodes]: return, steps alive, and the torso's largest
    forward (x) displacement from its start while alive.
    """
    env = make_eval_env(cfg.env.name, cfg.env.backend, cfg.eval.episode_length, cfg.env.action_repeat)
    attack_fn, settings = ATTACKS[attack], settings_from_config(cfg)
    reset_key, attack_key = jax.random.split(key)
    state = env.reset(jax.random.split(reset_key, episodes))
    x0 = state.pipeline_state.x.pos[:, 0, 0]

    def step(carry, step_key):
        state, ret, alive, length, reach = carry
        obs = victim.normalizer.normalize(state.obs)
        action = victim.action(attack_fn(victim, obs, step_key, eps, settings))
        state = env.step(state, jnp.clip(action, -1.0, 1.0))
        ret = ret + state.reward * alive
        length = length + alive
        reach = jnp.where(alive > 0, jnp.maximum(reach, state.pipeline_state.x.pos[:, 0, 0] - x0), reach)
        alive = alive * (1.0 - state.done)
        return (state, ret, alive, length, reach), None

    zeros = jnp.zeros(episodes)
    keys = jax.random.split(attack_key, cfg.eval.episode_length)
    (_, ret, _, length, reach), _ = jax.lax.scan(step, (state, zeros, jnp.ones(episodes), zeros, zeros), keys)
    return {"return": ret, "length": length, "distance": reach}


def measure(run_dir: Path, episodes: int) -> dict:
    """Measure the gait statistics of every cell of `run_dir` under each of GAIT_ATTACKS at every ε of the run."""
    cfg = StudyConfig.from_dict(json.loads((run_dir / "run.json").read_text())["config"]).validate()
    if cfg.env.name not in LOCOMOTION_ENVS:
        logger.warning("%s is not a locomotion env: its forward distance is the first body's x displacement, "
                       "which need not mean progress", cfg.env.name)
    action_size = make_base_env(cfg.env.name, cfg.env.backend).action_size
    key = jax.random.PRNGKey(10_000)
    rows = []
    for group_cfg, members, tree in load_final(run_dir, cfg):
        victims = make_victim(group_cfg, tree["params"], tree["normalizer"], action_size)
        for attack in GAIT_ATTACKS:
            for eps in (0.0,) if attack == "none" else tuple(e for e in cfg.eval.eps if e > 0):
                program = jax.jit(jax.vmap(lambda v: gait_rollout(group_cfg, attack, v, eps, key, episodes)))
                out = jax.device_get(program(victims))
                for i, cell in enumerate(members):
                    rows.append({"cell_id": cell.cell_id, "sparsity": cell.sparsity, "seed": cell.seed,
                                 "attack": attack, "eps": eps,
                                 **{f"{name}_mean": float(np.mean(out[name][i])) for name in out}})
    return {"config_name": cfg.name, "env": cfg.env.name, "backend": cfg.env.backend, "episodes": episodes,
            "episode_length": cfg.eval.episode_length, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="output JSON (default: RUN_DIR/gait.json)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser.parse_args()
    if not (args.run_dir / "run.json").is_file():
        parser.error(f"{args.run_dir} has no run.json: pass a folder written by `robustprune run`.")
    if args.episodes < 1:
        parser.error(f"--episodes={args.episodes} is invalid: use 1 or more episodes per cell.")
    out = args.out or args.run_dir / "gait.json"
    out.parent.mkdir(parents=True, exist_ok=True)  # before measuring, so a bad path loses no work
    start = time.perf_counter()
    try:
        record = measure(args.run_dir, args.episodes)
    except ConfigError as err:
        parser.error(str(err))
    record["command"] = f"python benchmarks/gait.py {args.run_dir} --episodes {args.episodes} --out {out}"
    record["machine"] = {"platform": platform.platform(), "devices": [str(d) for d in jax.devices()]}
    record["seconds"] = time.perf_counter() - start
    out.write_text(json.dumps(record, indent=2))
    for row in record["rows"]:
        print(f"cell {row['cell_id']} s={row['sparsity']} {row['attack']:>6} ε={row['eps']:<6} "
              f"return {row['return_mean']:8.1f} length {row['length_mean']:6.1f} distance {row['distance_mean']:6.2f}")
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
