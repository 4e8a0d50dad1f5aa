"""Certificates in a run folder: written by the smoke run, reproduced by `robustprune certify RUN_DIR`."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from robustprune.certify_folder import recertify
from robustprune.cli import EXIT_BAD_INPUT, main
from robustprune.presets import get_preset
from robustprune.study import SoundnessError, check_soundness, run_study


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cfg = get_preset("smoke")
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, attacks=("none", "random")))
    run_dir = run_study(cfg, tmp_path_factory.mktemp("run"), progress=False)
    again = recertify(run_dir, tmp_path_factory.mktemp("recertified"))
    return cfg, run_dir, again


def _assert_same_table(written: pd.DataFrame, recomputed: pd.DataFrame) -> None:
    assert list(written.columns) == list(recomputed.columns)
    assert len(written) == len(recomputed)
    for column in written.columns:
        if written[column].dtype.kind == "f":
            assert np.allclose(written[column], recomputed[column], rtol=1e-5, equal_nan=True), column
        else:
            same = written[column].fillna("").astype(str) == recomputed[column].fillna("").astype(str)
            assert same.all(), column


def test_certify_reproduces_the_run(runs):
    _, run_dir, again = runs
    for name in ("certificates", "certificates_path"):
        _assert_same_table(pd.read_csv(run_dir / f"{name}.csv"), pd.read_csv(again / f"{name}.csv"))


def test_run_json_reports_monotonicity_and_tightness(runs):
    cfg, run_dir, again = runs
    summary = json.loads((run_dir / "run.json").read_text())["certify"]
    path = summary["post_training_path"]
    assert 0.0 <= path["spectral_increase_fraction"] <= 1.0
    assert path["sparsities"] == sorted(set(cfg.prune.sparsities) | {0.0})
    certificates = pd.read_csv(run_dir / "certificates.csv")
    monotone = certificates[certificates.monotone].bound.unique()
    assert all(path["increase_fraction"][bound] == 0.0 for bound in monotone)
    assert set(summary["median_tightness_at_max_eps"]) == set(certificates.bound)
    assert all(value >= 1.0 - 1e-4 for value in summary["median_tightness_at_max_eps"].values())
    recorded = json.loads((again / "certify.json").read_text())
    assert recorded["post_training_path"] == path


def test_figures_written(runs):
    _, run_dir, again = runs
    for folder in (run_dir, again):
        for name in ("certificate_vs_sparsity.png", "bound_vs_measured_tv.png"):
            assert (folder / "figures" / name).stat().st_size > 0


def test_local_bounds_are_not_compared_with_attack_rollouts(runs):
    _, run_dir, _ = runs
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    certificates = pd.read_csv(run_dir / "certificates.csv")
    local = certificates.scope == "local"
    lowered = certificates.copy()
    lowered.loc[local, "tv_bound"] = 0.0
    check_soundness(evaluations, lowered)
    lowered.loc[certificates.bound == "spectral_product", "tv_bound"] = 0.0
    with pytest.raises(SoundnessError, match="tv_empirical above"):
        check_soundness(evaluations, lowered)


def test_cli_certify_without_checkpoints(runs, tmp_path, caplog):
    _, run_dir, _ = runs
    folder = tmp_path / "no_checkpoints"
    folder.mkdir()
    for name in ("run.json", "cells.csv", "evaluations.csv", "certificates.csv"):
        shutil.copy(run_dir / name, folder / name)
    assert main(["certify", str(folder)]) == EXIT_BAD_INPUT
    assert "checkpoints/final" in caplog.text
    assert not (folder / "certificates_path.csv").exists()


def test_cli_certify_non_run_folder(tmp_path, caplog):
    assert main(["certify", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "run.json" in caplog.text


def test_cli_certify_rejects_bad_tau(runs, tmp_path, caplog):
    _, run_dir, _ = runs
    assert main(["certify", str(run_dir), "--tau", "1.5", "--out", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "certify.tau" in caplog.text
