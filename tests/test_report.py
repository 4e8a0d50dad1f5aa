"""`robustprune report` and the Python API on synthetic run folders: determinism, shard merging, bad input."""

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

import robustprune as rp
from robustprune.cli import EXIT_BAD_INPUT, main
from robustprune.config import ConfigError
from robustprune.report import write_report

SPARSITIES = (0.0, 0.5, 0.9)
EPS = (0.0, 0.1, 0.2)
SEEDS = tuple(range(6))


def write_run(folder, seeds=SEEDS, first_id=0, name="synthetic", with_json=True):
    """A run folder with the columns `run_study` writes: 3 sparsities × seeds, attacks none/random/mad."""
    rng = np.random.default_rng(first_id + 17)
    cells, evals, certs = [], [], []
    cell_id = first_id
    for s in SPARSITIES:
        for seed in seeds:
            cells.append({"cell_id": cell_id, "env": "toy", "seed": seed, "schedule": "gradual",
                          "sparsity_target": s, "sparsity_achieved": s, "sparsity_per_layer": f"{s:.4f}",
                          "train_return": 90.0})
            clean = 100.0 - 20 * s + rng.normal(0, 3)
            evals.append({"cell_id": cell_id, "attack": "none", "norm": "linf", "eps": 0.0, "episodes": 4,
                          "return_mean": clean, "return_std": 1.0, "tv_empirical": 0.0})
            for attack, scale in (("random", 20.0), ("mad", 150.0)):
                for eps in EPS:
                    evals.append({"cell_id": cell_id, "attack": attack, "norm": "linf", "eps": eps, "episodes": 4,
                                  "return_mean": clean - scale * eps * (1 - 0.5 * s) + rng.normal(0, 1),
                                  "return_std": 1.0, "tv_empirical": min(1.0, 2 * eps * (1 - s))})
            for bound, factor in (("abs_product", 3.0), ("spectral_product", 2.5)):
                for eps in EPS:
                    certs.append({"cell_id": cell_id, "bound": bound, "norm": "linf", "eps": eps,
                                  "lipschitz": factor, "monotone": True, "tv_bound": min(1.0, factor * eps * (1 - s))})
            cell_id += 1
    folder.mkdir(parents=True)
    for file, rows in (("cells", cells), ("evaluations", evals), ("certificates", certs)):
        pd.DataFrame(rows).to_csv(folder / f"{file}.csv", index=False)
    if with_json:
        record = {"schema_version": 1, "config_hash": "abcd1234", "git_commit": "0" * 40, "devices": ["cpu:cpu"],
                  "evaluation_horizon": 100, "threat_model": "linf", "protocol_departure": "synthetic test data",
                  "config": {"name": name, "seeds": list(seeds), "env": {"name": "toy", "reward_per_step_max": 1.0},
                             "eval": {"episode_length": 100, "episodes": 4}}, "timings": {"wall_s": 1.0}}
        (folder / "run.json").write_text(json.dumps(record))
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs") / "synthetic")


@pytest.fixture(scope="module")
def report_dir(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_report([run_dir], out)
    return out


def test_report_writes_tables_figures_and_markdown(report_dir):
    text = (report_dir / "report.md").read_text()
    assert "## Regret decomposition" in text
    assert "## Sweet spots" in text
    assert "stochastic" in text
    for name in ("stats", "regret", "sweet_spots", "frontier", "paper_criterion"):
        assert (report_dir / "tables" / f"{name}.csv").stat().st_size > 0
    for fig in ("heatmaps", "robustness_curves", "frontier", "regret_bars", "tv_certified_vs_empirical"):
        assert (report_dir / "figures" / f"{fig}.png").exists()
        assert (report_dir / "figures" / f"{fig}.pdf").exists()


def test_report_is_byte_identical_on_rerun(run_dir, report_dir, tmp_path):
    write_report([run_dir], tmp_path, figures=False)
    assert (tmp_path / "report.md").read_text().split("## Figures")[0] == \
        (report_dir / "report.md").read_text().split("## Figures")[0]
    for table in sorted((report_dir / "tables").glob("*.csv")):
        assert (tmp_path / "tables" / table.name).read_bytes() == table.read_bytes(), table.name


def test_stats_table_reports_dense_score_one_and_median_rule(report_dir):
    stats = pd.read_csv(report_dir / "tables" / "stats.csv")
    agents = pd.read_csv(report_dir / "tables" / "agents.csv")
    dense = agents[(agents.sparsity_target == 0) & (agents.eps == 0.1)]
    assert np.median(dense.clean_score) == pytest.approx(1.0)
    dense_clean = stats[(stats.sparsity_target == 0) & (stats.attack == "none")].iloc[0]
    assert dense_clean.median_rule == "lower middle"  # 6 seeds
    worst = stats[stats.attack == "worst"]
    assert (worst.return_mean_low <= worst.return_mean).all()
    assert (worst.return_mean <= worst.return_mean_high).all()
    assert set(worst.worst_attack[worst.eps > 0]) == {"mad"}


def test_shards_with_colliding_ids_merge_to_the_same_statistics(run_dir, report_dir, tmp_path):
    merged = tmp_path / "sharded"
    write_run(merged / "shards" / "host_0", seeds=SEEDS[:3], with_json=False)
    write_run(merged / "shards" / "host_1", seeds=SEEDS[3:], with_json=False)
    shutil.copy(run_dir / "run.json", merged / "run.json")
    run = rp.load_run(merged)
    assert "run" in run.cells.columns
    assert len(run.cells) == len(SPARSITIES) * len(SEEDS)
    summary = rp.summarize(run)
    assert set(summary.seeds) == {len(SEEDS)}
    assert len(summary) == len(pd.read_csv(report_dir / "tables" / "stats.csv"))


def test_merging_same_run_twice_raises(run_dir):
    with pytest.raises(ConfigError, match="share a setting and seed"):
        rp.load_run(run_dir, run_dir)


def test_cli_report_and_bad_inputs(run_dir, tmp_path, caplog):
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").exists()
    with caplog.at_level(logging.ERROR):
        assert main(["report", str(tmp_path / "missing")]) == EXIT_BAD_INPUT
        assert main(["report", str(run_dir), str(run_dir)]) == EXIT_BAD_INPUT
    assert "does not exist" in caplog.text
    assert "--out is required" in caplog.text


def test_configure_applies_and_rejects_overrides():
    cfg = rp.configure("smoke", seeds=3, ppo__num_updates=8, eval={"episodes": 3})
    assert cfg.seeds == (0, 1, 2)
    assert cfg.ppo.num_updates == 8
    assert cfg.eval.episodes == 3
    with pytest.raises(ConfigError, match="num_updates"):
        rp.configure("smoke", ppo__num_updatez=8)
    with pytest.raises(ConfigError, match="not a setting"):
        rp.configure("smoke", learning_rate=1e-3)
