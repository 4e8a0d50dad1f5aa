"""Chunked grid runs in one process: divergence, determinism, chunk-size independence, resume and recovery.

Every run uses the tiny 6-cell grid of `grid_helpers`; runs with chunk size 2 share one compiled program.
"""

import json
import errno
import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from grid_helpers import CHECKPOINT_EVERY, CROSS_SHAPE_RTOL, TABLES, csv_bytes, numeric_close, tiny_config
from robustprune import checkpoint as checkpoint_module
from robustprune import results
from robustprune.checkpoint import MANIFEST, DiskFull
from robustprune.distributed import ProcessSettings
from robustprune.results import load_run
from robustprune.study import run_study

NAN_CELL, NAN_UPDATE = 3, 2


def run(out, **kwargs):
    kwargs.setdefault("chunk_size", 2)
    return run_study(tiny_config(), out, progress=False, checkpoint_every=CHECKPOINT_EVERY, **kwargs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("grid")
    return {
        "clean": run(base / "clean"),
        "again": run(base / "again"),
        "nan": run(base / "nan", nan_at_update={NAN_CELL: NAN_UPDATE}),
        "chunk4": run(base / "chunk4", chunk_size=4),
        "base": base,
    }


def test_same_seed_gives_identical_csv_files(runs):
    assert csv_bytes(runs["clean"]) == csv_bytes(runs["again"])


def test_timings_only_in_run_json(runs):
    for name in TABLES:
        columns = pd.read_csv(runs["clean"] / f"{name}.csv").columns
        assert not any(c.endswith("_s") or "time" in c for c in columns)


def test_cell_results_do_not_depend_on_chunk_size(runs):
    for name in TABLES:
        a = pd.read_csv(runs["clean"] / f"{name}.csv")
        b = pd.read_csv(runs["chunk4"] / f"{name}.csv")
        assert numeric_close(a, b, CROSS_SHAPE_RTOL), name


def test_planted_nan_marks_only_its_cell(runs):
    cells = pd.read_csv(runs["nan"] / "cells.csv").set_index("cell_id")
    assert cells.loc[NAN_CELL, "diverged"]
    assert cells.loc[NAN_CELL, "diverged_at"] == NAN_UPDATE
    assert np.isnan(cells.loc[NAN_CELL, "train_return"])
    others = cells.drop(index=NAN_CELL)
    assert not others.diverged.any()
    assert (others.diverged_at == -1).all()


def test_planted_nan_leaves_other_cells_exactly_equal(runs):
    for name in TABLES:
        clean = pd.read_csv(runs["clean"] / f"{name}.csv")
        nan = pd.read_csv(runs["nan"] / f"{name}.csv")
        clean, nan = clean[clean.cell_id != NAN_CELL], nan[nan.cell_id != NAN_CELL]
        pd.testing.assert_frame_equal(clean.reset_index(drop=True), nan.reset_index(drop=True))


def test_diverged_cell_metrics_are_nan_and_counted(runs):
    evaluations = pd.read_csv(runs["nan"] / "evaluations.csv")
    rows = evaluations[evaluations.cell_id == NAN_CELL]
    assert len(rows) > 0
    assert rows.return_mean.isna().all()
    assert load_run(runs["nan"])["run"]["grid"]["diverged_cells"] == 1
    assert load_run(runs["clean"])["run"]["grid"]["diverged_cells"] == 0


def test_compile_and_run_times_reported_apart(runs):
    timings = load_run(runs["clean"])["run"]["timings"]
    assert timings["train_compile_s"] > 0
    assert timings["train_run_s"] > 0


def test_interrupted_training_resumes_to_identical_results(runs, monkeypatch, caplog):
    out = runs["base"] / "interrupted"
    real_save = checkpoint_module.ChunkStore.save_train

    def save_then_interrupt(self, state, metrics, updates_done):
        real_save(self, state, metrics, updates_done)
        if self.folder.name == "chunk_0001":
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.ChunkStore, "save_train", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(out)
    monkeypatch.undo()
    chunk0 = out / "shards" / "host_0" / "chunks" / "chunk_0000" / MANIFEST
    assert chunk0.exists()
    assert (out / "shards" / "host_0" / "chunks" / "chunk_0001" / "train" / MANIFEST).exists()
    stamp = chunk0.stat().st_mtime_ns

    with caplog.at_level(logging.INFO):
        run(out)
    assert "Resuming chunk_0001 from update 3" in caplog.text
    assert chunk0.stat().st_mtime_ns == stamp
    assert load_run(out)["run"]["grid"]["chunks_resumed"] == 1
    assert csv_bytes(out) == csv_bytes(runs["clean"])


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_checkpoint_and_results_are_recomputed(runs, caplog):
    out = runs["base"] / "corrupt"
    shutil.copytree(runs["clean"], out)
    chunks = out / "shards" / "host_0" / "chunks"
    ckpt_file = max((p for p in (chunks / "chunk_0000" / "final").rglob("*") if p.is_file()),
                    key=lambda p: p.stat().st_size)
    _flip_last_byte(ckpt_file)
    table = chunks / "chunk_0001" / "results" / "cells.csv"
    table.write_text(table.read_text()[:40])  # truncated
    untouched = (chunks / "chunk_0002" / MANIFEST).stat().st_mtime_ns

    with caplog.at_level(logging.WARNING):
        run(out)
    assert "chunk_0000" in caplog.text
    assert "chunk_0001" in caplog.text
    assert "checksum" in caplog.text
    assert load_run(out)["run"]["grid"]["chunks_run"] == 2
    assert (chunks / "chunk_0002" / MANIFEST).stat().st_mtime_ns == untouched
    assert csv_bytes(out) == csv_bytes(runs["clean"])


def test_disk_full_keeps_earlier_chunks_intact(runs, monkeypatch):
    out = runs["base"] / "full"
    real_save = checkpoint_module.save_tree

    def full_on_second_chunk(path, tree):
        if "chunk_0001" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, tree)

    monkeypatch.setattr(checkpoint_module, "save_tree", full_on_second_chunk)
    with pytest.raises(DiskFull, match="No space left"):
        run(out)
    checkpoint_module.verify_manifest(out / "shards" / "host_0" / "chunks" / "chunk_0000")
    assert not (out / "shards" / "host_0" / "chunks" / "chunk_0001" / MANIFEST).exists()


def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "cells.csv"
    results.atomic_write_text(path, "old,complete\n")

    def fail(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        results.atomic_write_text(path, "new," * 10000)
    assert path.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cells.csv"]


def test_two_host_shards_merge_to_single_host_run(runs, monkeypatch):
    out = runs["base"] / "sharded"
    monkeypatch.setattr("robustprune.study.initialize", lambda process: process)  # no runtime in one process
    for pid in (0, 1):
        run(out, process=ProcessSettings(coordinator="127.0.0.1:1", num_processes=2, process_id=pid))
    assert not (out / "cells.csv").exists()
    merged = load_run(out)
    single = load_run(runs["clean"])
    for name in TABLES:
        pd.testing.assert_frame_equal(merged[name], single[name])


def test_skip_only_rerun_keeps_timings(runs, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(runs["clean"], folder)
    before = json.loads((folder / "run.json").read_text())["timings"]
    run(folder)
    after = json.loads((folder / "run.json").read_text())["timings"]
    assert before["train_run_s"] > 0
    assert after["train_run_s"] == before["train_run_s"]
    assert after["evaluate"] == before["evaluate"]
    assert after["rerun_wall_s"] > 0
