"""A CLI run killed with SIGKILL after its first chunk is checkpointed resumes to identical results."""

import json
import signal
import subprocess
import time

from grid_helpers import cli_args, csv_bytes, reference_run, subprocess_env, write_config
from robustprune.checkpoint import MANIFEST


def test_killed_run_resumes_without_recomputing_finished_chunks(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    reference = reference_run(base)
    out = tmp_path_factory.mktemp("killed") / "run"
    config = write_config(out.parent / "tiny.json")
    args = cli_args(config, out, "--chunk-size", "2")
    first = out / "shards" / "host_0" / "chunks" / "chunk_0000" / MANIFEST

    proc = subprocess.Popen(args, env=subprocess_env(base), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert still_running
    assert first.exists()
    assert not (out / "cells.csv").exists()
    stamp = first.stat().st_mtime_ns

    done = subprocess.run(args, env=subprocess_env(base), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Chunk 0 (cells 0-1) is finished; skipping it" in done.stderr
    assert first.stat().st_mtime_ns == stamp
    assert json.loads((out / "run.json").read_text())["grid"]["chunks_resumed"] >= 1
    assert csv_bytes(out) == csv_bytes(reference)
