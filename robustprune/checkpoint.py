"""Checksummed checkpoints of finished chunks and of training in progress.

A chunk folder holds the chunk's result tables (CSV), its final parameters (orbax), an optional training
checkpoint (`train/`: the whole batched TrainState, the metrics so far and the update count), and a manifest
`MANIFEST.sha256.json` that maps every file to its sha256. The manifest is written last and atomically, so a
folder without a valid manifest is unfinished or corrupt: it is reported and recomputed, never trusted.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import shutil
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from robustprune.results import atomic_write_text, write_csv

logger = logging.getLogger(__name__)

MANIFEST = "MANIFEST.sha256.json"


class CorruptCheckpoint(RuntimeError):
    """A checkpoint or results file whose bytes do not match its manifest, or whose manifest is unreadable."""


class DiskFull(OSError):
    """Writing a checkpoint or result failed for lack of space. Files written before it are intact."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))


def write_manifest(folder: Path) -> None:
    """Hash every file under `folder` and write the manifest atomically (the commit point of the folder)."""
    digests = {str(p.relative_to(folder)): file_sha256(p) for p in _files(folder)}
    atomic_write_text(folder / MANIFEST, json.dumps(digests, indent=1, sort_keys=True) + "\n")


def verify_manifest(folder: Path) -> None:
    """Raise CorruptCheckpoint unless every file listed in the manifest exists with the recorded sha256."""
    path = folder / MANIFEST
    try:
        digests = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CorruptCheckpoint(f"{folder} has no {MANIFEST}: it was never finished") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptCheckpoint(f"{path} is malformed or truncated ({err})") from err
    if not isinstance(digests, dict) or not digests:
        raise CorruptCheckpoint(f"{path} lists no files")
    for name, expected in digests.items():
        file = folder / name
        if not file.is_file():
            raise CorruptCheckpoint(f"{file} is listed in {MANIFEST} but missing")
        if file_sha256(file) != expected:
            raise CorruptCheckpoint(f"{file} does not match its sha256 in {MANIFEST} (corrupt or truncated)")


def _checkpointer():
    import orbax.checkpoint as ocp

    # Each process saves its own cells, so orbax must not wait for the other processes at its barriers.
    # Synchronous on purpose: a chunk is committed only after its files are on disk, and no background
    # thread outlives the call (the asynchronous StandardCheckpointer occasionally hung here on 2 busy cores).
    pid = jax.process_index()
    options = ocp.options.MultiprocessingOptions(primary_host=pid, active_processes={pid})
    return ocp.Checkpointer(ocp.StandardCheckpointHandler(), multiprocessing_options=options)


def save_tree(path: Path, tree) -> None:
    """Save a pytree of arrays with orbax at `path` (overwriting)."""
    import orbax.checkpoint as ocp

    with _checkpointer() as checkpointer:
        checkpointer.save(path.resolve(), args=ocp.args.StandardSave(tree), force=True)


def restore_tree(path: Path, target):
    """Restore a pytree saved by `save_tree` against `target`, so dtypes, structure and shardings match."""
    import orbax.checkpoint as ocp

    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    with _checkpointer() as checkpointer:
        return checkpointer.restore(path.resolve(), args=ocp.args.StandardRestore(abstract))


def _reraise_disk_full(err: OSError, folder: Path):
    if err.errno == errno.ENOSPC:
        raise DiskFull(errno.ENOSPC, f"No space left on the device while writing {folder}. Results finished "
                       "before it are intact; free some space and rerun the same command to resume.") from err
    raise err


class ChunkStore:
    """The folder of one chunk: `results/` tables, `final/` parameters, `train/` checkpoint, manifests."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def is_finished(self) -> bool:
        """True when the chunk's results verify against the manifest. A corrupt chunk is reported and removed."""
        if not (self.folder / MANIFEST).exists():
            return False
        try:
            verify_manifest(self.folder)
            return True
        except CorruptCheckpoint as err:
            logger.warning("Chunk checkpoint failed its checksum and will be recomputed: %s", err)
            for name in ("results", "final", MANIFEST):
                target = self.folder / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
            return False

    def save_results(self, tables: dict[str, pd.DataFrame], final_tree) -> None:
        """Write the chunk's tables and final parameters, then commit them with the manifest."""
        try:
            for name, table in tables.items():
                write_csv(self.folder / "results" / f"{name}.csv", table)
            save_tree(self.folder / "final", final_tree)
            shutil.rmtree(self.folder / "train", ignore_errors=True)  # the finished chunk no longer needs it
            write_manifest(self.folder)
        except OSError as err:
            _reraise_disk_full(err, self.folder)

    def load_results(self) -> dict[str, pd.DataFrame]:
        return {p.stem: pd.read_csv(p) for p in sorted((self.folder / "results").glob("*.csv"))}

    def load_final(self, target):
        return restore_tree(self.folder / "final", target)

    def save_train(self, state, metrics: dict, updates_done: int) -> None:
        """Checkpoint training in progress: the whole batched TrainState, metrics [cells, updates_done]."""
        folder = self.folder / "train"
        try:
            shutil.rmtree(folder, ignore_errors=True)
            save_tree(folder / "state", jax.device_get(state))  # host arrays: each process saves its own
            buffer = io.BytesIO()
            np.savez(buffer, **{k: np.asarray(v) for k, v in metrics.items()})
            (folder / "metrics.npz").write_bytes(buffer.getvalue())
            atomic_write_text(folder / "progress.json", json.dumps({"updates_done": updates_done}) + "\n")
            write_manifest(folder)
        except OSError as err:
            _reraise_disk_full(err, folder)
        logger.info("Checkpointed training of %s at update %d", self.folder.name, updates_done)

    def load_train(self, target):
        """Return (state, metrics, updates_done) from a verified training checkpoint, or None."""
        folder = self.folder / "train"
        if not folder.exists():
            return None
        try:
            verify_manifest(folder)
            updates_done = json.loads((folder / "progress.json").read_text())["updates_done"]
            with np.load(folder / "metrics.npz") as data:
                metrics = {k: data[k] for k in data.files}
            host = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), target)
            shardings = jax.tree_util.tree_map(lambda x: x.sharding, target)
            state = jax.device_put(restore_tree(folder / "state", host), shardings)
        except (CorruptCheckpoint, OSError, ValueError, KeyError) as err:
            logger.warning("Training checkpoint of %s is unusable and will be recomputed: %s", self.folder.name, err)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        logger.info("Resuming %s from update %d", self.folder.name, updates_done)
        return state, metrics, updates_done
