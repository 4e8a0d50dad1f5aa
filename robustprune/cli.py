"""Command-line interface: `robustprune run | report | list`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1

logger = logging.getLogger("robustprune")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustprune",
        description="Train, prune, attack and certify deep-RL policies on a sparsity grid.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default: INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a preset end to end: train, evaluate under attack, certify, report")
    run.add_argument("--preset", default="default", help="preset name (see `robustprune list`; default: default)")
    run.add_argument("--out", default=None,
                     help="output folder (default: results/runs/<preset>-<config hash>/)")
    run.add_argument("--env", default=None, help="override the preset's Brax environment name")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default: the preset's)")
    run.add_argument("--overwrite", action="store_true",
                     help="allow writing into a folder that holds a different config's results")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")

    sub.add_parser("list", help="list presets, environments, attacks, schedules and certificate bounds")

    report = sub.add_parser("report", help="write report.md, tables and figures from saved run folders (no training)")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders written by `robustprune run` (host shards under shards/host_*/ are merged)")
    report.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report/ for a single run)")
    report.add_argument("--reference-return", type=float, default=None,
                        help="J(π*) for the regret decomposition (default: the best dense clean return of the study)")
    return parser


def _config_from_args(args):
    from robustprune.config import ConfigError
    from robustprune.presets import get_preset

    cfg = get_preset(args.preset)
    if args.env is not None:
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, name=args.env))
    if args.seeds is not None:
        if args.seeds <= 0:
            raise ConfigError(f"--seeds={args.seeds} is invalid: give a positive number of seeds, e.g. --seeds 3.")
        cfg = dataclasses.replace(cfg, seeds=tuple(range(args.seeds)))
    return cfg.validate()


def _cmd_run(args) -> int:
    from robustprune.study import run_study

    cfg = _config_from_args(args)
    out = run_study(cfg, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    print(f"Results written to {out}")
    return 0


def _cmd_report(args) -> int:
    from robustprune.config import ConfigError
    from robustprune.report import write_report

    if args.out is None and len(args.run_dirs) > 1:
        raise ConfigError(f"--out is required with {len(args.run_dirs)} run folders: give the folder for the "
                          "merged report, e.g. --out results/merged-report.")
    out = args.out or f"{args.run_dirs[0].rstrip('/')}/report"
    path = write_report(args.run_dirs, out, reference=args.reference_return)
    print(f"Report written to {path}")
    return 0


def _cmd_list(args) -> int:
    from robustprune.attacks import ATTACKS
    from robustprune.certify import BOUNDS
    from robustprune.envs import available_envs
    from robustprune.presets import PRESETS
    from robustprune.pruning import SCHEDULES

    from robustprune.cost import estimate_cost

    print("presets (estimated time on 2 CPU cores; see robustprune/cost.py):")
    for name, make in sorted(PRESETS.items()):
        cfg = make()
        print(f"  {name:12s} env={cfg.env.name} env_steps_per_cell={cfg.ppo.env_steps} "
              f"{estimate_cost(cfg).describe()}")
    print("environments: " + ", ".join(available_envs()))
    print("attacks:      " + ", ".join(ATTACKS))
    print("schedules:    " + ", ".join(SCHEDULES))
    print("bounds:       " + ", ".join(f"{n}{'' if b.monotone else ' (not monotone)'}" for n, b in BOUNDS.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "jax._src", "matplotlib"):  # orbax and jax log every checkpoint step at INFO
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    from robustprune.config import ConfigError

    try:
        return {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report}[args.command](args)
    except ConfigError as err:
        logger.error("Invalid input: %s", err)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        logger.error("Interrupted. Results written before the interruption are kept; rerun the same command.")
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
