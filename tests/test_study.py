"""The main job end to end on the smoke preset: files, schema and the soundness of every row."""

import json

import pandas as pd
import pytest

from robustprune.certify import BOUNDS
from robustprune.presets import get_preset
from robustprune.study import run_study


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    cfg = get_preset("smoke")
    out = run_study(cfg, tmp_path_factory.mktemp("smoke"), progress=False)
    return cfg, out


def test_run_writes_every_file(smoke_run):
    _, out = smoke_run
    for name in ("run.json", "cells.csv", "evaluations.csv", "certificates.csv"):
        assert (out / name).is_file()
    assert (out / "checkpoints" / "final").is_dir()
    assert (out / "figures" / "return_vs_sparsity.png").stat().st_size > 0
    assert (out / "figures" / "bound_vs_sparsity.png").stat().st_size > 0


def test_tables_have_one_row_per_observation(smoke_run):
    cfg, out = smoke_run
    cells = pd.read_csv(out / "cells.csv")
    evaluations = pd.read_csv(out / "evaluations.csv")
    certificates = pd.read_csv(out / "certificates.csv")
    num_attacked = len([a for a in cfg.eval.attacks if a != "none"])
    assert len(cells) == cfg.num_cells
    worst_rows = len(cfg.eval.eps)  # one `worst` row per cell and ε, over the attacks other than none
    assert len(evaluations) == cfg.num_cells * (1 + num_attacked * len(cfg.eval.eps) + worst_rows)
    assert (evaluations[evaluations.attack == "worst"].worst_attack.isin(cfg.eval.attacks)).all()
    assert set(certificates.bound) >= {"linf_layer_product", "abs_product"}
    assert len(certificates) == cfg.num_cells * certificates.bound.nunique() * len(cfg.eval.eps)


def test_empirical_tv_below_every_bound(smoke_run):
    _, out = smoke_run
    evaluations = pd.read_csv(out / "evaluations.csv")
    certificates = pd.read_csv(out / "certificates.csv")
    certificates = certificates[certificates.sound]  # local (IBP) bounds hold at their own visited states only
    merged = evaluations.merge(certificates, on=["cell_id", "eps", "norm"])
    assert len(merged) > 0
    assert (merged.tv_empirical <= merged.tv_bound + 1e-6).all()


def test_abs_product_below_layer_product(smoke_run):
    _, out = smoke_run
    certificates = pd.read_csv(out / "certificates.csv")
    lipschitz = certificates.pivot_table(index="cell_id", columns="bound", values="lipschitz")
    assert (lipschitz["abs_product"] <= lipschitz["linf_layer_product"] * (1 + 1e-6)).all()
    flags = certificates[certificates.scope == "global"].drop_duplicates("bound").set_index("bound").monotone
    for bound, monotone in flags.items():
        assert monotone == BOUNDS[bound].monotone


def test_run_json_records_protocol(smoke_run):
    cfg, out = smoke_run
    record = json.loads((out / "run.json").read_text())
    assert record["schema_version"] >= 1
    assert record["evaluation_horizon"] == cfg.eval.episode_length
    assert record["max_return"] == cfg.eval.episode_length * cfg.env.reward_per_step_max
    assert "1000" in record["protocol_departure"]
    assert record["timings"]["train_compile_s"] > 0
