"""Sharding over 4 simulated CPU devices, and two processes joined by jax.distributed on 127.0.0.1."""

import socket
import subprocess

import pandas as pd

from grid_helpers import CROSS_SHAPE_RTOL, TABLES, cli_args, numeric_close, reference_run, subprocess_env, \
    write_config
from robustprune.results import load_run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_four_devices_match_one_device(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    reference = reference_run(base)
    out = tmp_path_factory.mktemp("devices") / "run"
    config = write_config(out.parent / "tiny.json")
    done = subprocess.run(cli_args(config, out, "--chunk-size", "3"), env=subprocess_env(base, devices=4),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Chunk size 3 rounded up to 4" in done.stderr
    assert "on 4 cpu device(s)" in done.stderr
    for name in TABLES:
        assert numeric_close(pd.read_csv(out / f"{name}.csv"), pd.read_csv(reference / f"{name}.csv"),
                             CROSS_SHAPE_RTOL), name


def test_two_distributed_processes_match_one_process(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    reference = reference_run(base)
    out = tmp_path_factory.mktemp("hosts") / "run"
    config = write_config(out.parent / "tiny.json")
    coordinator = f"127.0.0.1:{free_port()}"
    procs = [
        subprocess.Popen(cli_args(config, out, "--chunk-size", "2", "--coordinator", coordinator,
                                  "--num-processes", "2", "--process-id", str(i)),
                         env=subprocess_env(base), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    assert "Process 1 of 2 joined" in outputs[1][1]
    assert (out / "shards" / "host_0" / "cells.csv").exists()
    assert (out / "shards" / "host_1" / "cells.csv").exists()
    merged, single = load_run(out), load_run(reference)
    for name in TABLES:
        pd.testing.assert_frame_equal(merged[name], single[name])
