"""Results folder: schema, atomic writes, checkpoints and loading.

A run folder contains `run.json` (config, versions, devices, timings), the long-format tables `cells.csv`,
`evaluations.csv` and `certificates.csv`, the final parameters of every cell under `checkpoints/`, and
`figures/`. Timings live only in `run.json`, so two identical runs write identical CSV files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import jax
import pandas as pd

from robustprune import SCHEMA_VERSION
from robustprune.config import ConfigError, StudyConfig

logger = logging.getLogger(__name__)

PACKAGES = ("robustprune", "jax", "jaxlib", "flax", "optax", "brax", "chex", "orbax-checkpoint", "numpy")


def config_hash(cfg: StudyConfig) -> str:
    """Hash the full config to a short, stable id that names and recognizes run folders."""
    text = json.dumps(cfg.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def default_run_dir(cfg: StudyConfig, root: str | Path = "results/runs") -> Path:
    return Path(root) / f"{cfg.name}-{config_hash(cfg)}"


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file through a temporary file in the same folder and a rename, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, table: pd.DataFrame) -> None:
    atomic_write_text(path, table.to_csv(index=False, float_format="%.6g", lineterminator="\n"))


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def git_commit() -> str:
    """Return the commit of the source tree that produced a run, or 'unknown' outside a git checkout."""
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_info() -> list[str]:
    return [f"{d.platform}:{d.device_kind}" for d in jax.devices()]


def prepare_run_dir(out_dir: Path, cfg: StudyConfig, *, overwrite: bool) -> None:
    """Create the folder, or check that an existing one belongs to the same config.

    Raises ConfigError when the folder contains a different grid's results (unless `overwrite`) or comes from
    a newer schema version.
    """
    check_run_dir(out_dir, cfg, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)


def check_run_dir(out_dir: Path, cfg: StudyConfig, *, overwrite: bool) -> None:
    """The checks of `prepare_run_dir`, without creating anything."""
    run_json = out_dir / "run.json"
    if run_json.exists():
        try:
            existing = json.loads(run_json.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{run_json} is not valid JSON ({err}). Delete it or pass --overwrite.") from err
        version = existing.get("schema_version", 0)
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{out_dir} was written with schema_version={version}, newer than this robustprune's "
                f"{SCHEMA_VERSION}. Upgrade robustprune or choose another --out folder."
            )
        if existing.get("config_hash") != config_hash(cfg) and not overwrite:
            raise ConfigError(
                f"{out_dir} contains results of a different config (hash {existing.get('config_hash')}, this "
                f"config is {config_hash(cfg)}). Choose another --out folder or pass --overwrite."
            )


def save_checkpoint(path: Path, tree) -> None:
    """Save a pytree of arrays with orbax (overwriting), for later certify, attack and report commands."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path.resolve(), tree, force=True)


def load_checkpoint(path: Path, target):
    """Restore a pytree saved by `save_checkpoint`, shaped like `target` (exact dtypes and structure)."""
    import orbax.checkpoint as ocp

    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path.resolve(), abstract)


def load_run(run_dir: str | Path) -> dict:
    """Load a run folder's tables as pandas DataFrames, plus its run.json as a dict."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} has no run.json: it is not a robustprune run folder.")
    names = ("cells", "evaluations", "certificates")
    if all((run_dir / f"{name}.csv").exists() for name in names):
        tables = {name: pd.read_csv(run_dir / f"{name}.csv") for name in names}
    else:
        tables = merge_shards(run_dir)
    tables["run"] = json.loads((run_dir / "run.json").read_text())
    return tables


class IncompleteRun(RuntimeError):
    """A multi-host run folder whose host shards do not yet cover every cell of the grid."""


def merge_shards(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Concatenate the result tables of every finished host shard (`shards/host_<i>/`), sorted by cell.

    Raises IncompleteRun naming the missing cells when the shards do not cover the grid that run.json records.
    """
    run_dir = Path(run_dir)
    shards = sorted((run_dir / "shards").glob("host_*/cells.csv"))
    if not shards:
        raise FileNotFoundError(f"{run_dir} has neither cells.csv nor finished shards under shards/host_*/.")
    from robustprune.runner import canonical_order

    tables = {}
    for name in sorted({p.stem for shard in shards for p in shard.parent.glob("*.csv")}):
        parts = [pd.read_csv(p.parent / f"{name}.csv") for p in shards if (p.parent / f"{name}.csv").exists()]
        tables[name] = canonical_order(name, pd.concat(parts, ignore_index=True))
    run = json.loads((run_dir / "run.json").read_text())
    expected = StudyConfig.from_dict(run["config"]).num_cells if "config" in run else None
    found = set(tables["cells"].cell_id)
    if expected is not None and len(found) < expected:
        missing = sorted(set(range(expected)) - found)
        raise IncompleteRun(f"{run_dir}: shards cover {len(found)} of {expected} cells; cells {missing[:10]} are "
                            "missing. Wait for every host to finish, or rerun the missing hosts' commands.")
    return tables
