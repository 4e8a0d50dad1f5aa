"""Command-line interface: `robustprune run | report | certify | list`."""

from __future__ import annotations

import argparse
import dataclasses
import errno
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
    run.add_argument("--preset", default=None, help="preset name (see `robustprune list`; default: default)")
    run.add_argument("--out", default=None,
                     help="output folder (default: results/runs/<preset>-<config hash>/)")
    run.add_argument("--env", default=None, help="override the preset's Brax environment name")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default: the preset's)")
    run.add_argument("--overwrite", action="store_true",
                     help="allow writing into a folder that holds a different config's results")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_grid_options(run)
    from robustprune.pruning_cli import add_pruning_options

    add_pruning_options(run)

    sub.add_parser("list", help="list presets, environments, attacks, schedules and certificate bounds")

    certify = sub.add_parser("certify", help="recompute certificates and their figures from a run folder's "
                                             "saved checkpoint (no training)")
    certify.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `robustprune run`")
    certify.add_argument("--out", default=None, help="output folder (default: RUN_DIR itself)")
    certify.add_argument("--tau", type=float, default=None,
                         help="TV threshold of the certified radius, in (0, 1) (default: the run's certify.tau)")

    report = sub.add_parser("report", help="write report.md, tables and figures from saved run folders (no training)")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders written by `robustprune run` (host shards under shards/host_*/ are merged)")
    report.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report/ for a single run)")
    report.add_argument("--reference-return", type=float, default=None,
                        help="J(π*) for the regret decomposition (default: the best dense clean return of the study)")
    return parser


def _add_grid_options(run: argparse.ArgumentParser) -> None:
    """Options of `run` for config files, chunking, checkpoints and several hosts."""
    run.add_argument("--config", default=None, metavar="FILE",
                     help="JSON config file (sections as in run.json's 'config'); replaces --preset")
    run.add_argument("--chunk-size", type=int, default=None, metavar="CELLS",
                     help="cells trained together in one program, rounded up to a multiple of the device count "
                          "(default: the largest that fits 80%% of free device memory, measured)")
    run.add_argument("--checkpoint-every", type=int, default=None, metavar="UPDATES",
                     help="checkpoint training every this many PPO updates (default: only finished chunks)")
    run.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                     help="address of process 0 for multi-host runs (env ROBUSTPRUNE_COORDINATOR)")
    run.add_argument("--num-processes", type=int, default=None, metavar="N",
                     help="number of processes (hosts) in a multi-host run (env ROBUSTPRUNE_NUM_PROCESSES; default 1)")
    run.add_argument("--process-id", type=int, default=None, metavar="I",
                     help="this process's index in [0, N) (env ROBUSTPRUNE_PROCESS_ID; default 0)")


def _config_from_args(args):
    from robustprune.config import ConfigError
    from robustprune.presets import get_preset

    if getattr(args, "config", None):
        from robustprune.validate import load_config_file

        if args.preset is not None:
            raise ConfigError(f"--preset={args.preset!r} and --config={args.config!r} were both given, but the "
                              "config file replaces the preset. Pass only one of them.")
        cfg = load_config_file(args.config)
    else:
        cfg = get_preset(args.preset or "default")
    if args.env is not None:
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, name=args.env))
    from robustprune.pruning_cli import apply_pruning_options

    cfg = apply_pruning_options(cfg, args)
    if args.seeds is not None:
        if args.seeds <= 0:
            raise ConfigError(f"--seeds={args.seeds} is invalid: give a positive number of seeds, e.g. --seeds 3.")
        cfg = dataclasses.replace(cfg, seeds=tuple(range(args.seeds)))
    return cfg.validate()


def _cmd_run(args) -> int:
    from robustprune.study import run_study

    cfg = _config_from_args(args)
    from robustprune.distributed import ProcessSettings

    process = ProcessSettings.from_env(args.coordinator, args.num_processes, args.process_id)
    out = run_study(cfg, args.out, overwrite=args.overwrite, progress=not args.no_progress,
                    chunk_size=args.chunk_size, checkpoint_every=args.checkpoint_every, process=process)
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


def _cmd_certify(args) -> int:
    from robustprune.certify_folder import recertify

    out = recertify(args.run_dir, args.out, tau=args.tau)
    print(f"Certificates written to {out}")
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
    from robustprune.pruning import ALLOCATIONS, METHODS

    print("methods:      " + ", ".join(METHODS) + " (allocations: " + ", ".join(ALLOCATIONS) + ")")
    print("bounds:       " + ", ".join(f"{n}{'' if b.monotone else ' (not monotone)'}" for n, b in BOUNDS.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "jax._src", "matplotlib"):  # orbax and jax log every checkpoint step at INFO
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    from robustprune.config import ConfigError

    try:
        return {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report, "certify": _cmd_certify}[args.command](args)
    except ConfigError as err:
        logger.error("Invalid input: %s", err)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        command = " ".join(["robustprune", *(sys.argv[1:] if argv is None else argv)])
        logger.error("Interrupted. Finished chunks and the last training checkpoint are saved; resume with the "
                     "same command on the same folder:\n  %s", command)
        return EXIT_RUN_FAILED
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        logger.error("Run failed: %s", err)
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
