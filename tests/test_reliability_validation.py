"""Every bad input is rejected before anything compiles, with a message naming the setting (exit code 2)."""

import json
import logging

import jax
import pytest

from grid_helpers import tiny_config
from robustprune import SCHEMA_VERSION, runner
from robustprune import train as train_module
from robustprune.cli import EXIT_BAD_INPUT, main
from robustprune.results import config_hash


def nested(**changes):
    """The tiny config as a dict, with 'section.key' (or top-level 'key') replaced."""
    data = tiny_config().to_dict()
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        target = data
        for part in path:
            target = target[part]
        target[key] = value
    return data


def write_run_json(out, **fields):
    out.mkdir(parents=True, exist_ok=True)
    record = {"schema_version": SCHEMA_VERSION, "config_hash": config_hash(tiny_config()), **fields}
    (out / "run.json").write_text(json.dumps(record))


def write_layout(out, text):
    folder = out / "shards" / "host_0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "layout.json").write_text(text)


# (case id, config changes or raw file text, extra argv, folder setup, text the message must contain)
CASES = [
    ("sparsity_one", {"prune.sparsities": [0.0, 1.0]}, [], None, "prune.sparsities[1]=1.0"),
    ("sparsity_negative", {"prune.sparsities": [-0.1]}, [], None, "prune.sparsities[0]=-0.1"),
    ("eps_negative", {"eval.eps": [-0.1]}, [], None, "eval.eps[0]=-0.1"),
    ("eps_nan", {"eval.eps": [float("nan")]}, [], None, "eval.eps[0]=nan"),
    ("eps_inf", {"eval.eps": [0.0, float("inf")]}, [], None, "eval.eps[1]=inf"),
    ("unknown_env", {"env.name": "point_mas"}, [], None, "'point_mass'"),
    ("unknown_backend", {"env.backend": "sprin"}, [], None, "env.backend='sprin'"),
    ("unknown_attack", {"eval.attacks": ["none", "randon"]}, [], None, "'random'"),
    ("unknown_schedule", {"prune.schedules": ["gradul"]}, [], None, "'gradual'"),
    ("unknown_norm", {"eval.norm": "linff"}, [], None, "eval.norm='linff'"),
    ("unknown_preset", None, ["--preset", "smok"], None, "'smoke'"),
    ("zero_seeds_flag", None, ["--preset", "smoke", "--seeds", "0"], None, "--seeds=0"),
    ("no_seeds", {"seeds": []}, [], None, "seeds=()"),
    ("zero_episodes", {"eval.episodes": 0}, [], None, "eval.episodes=0"),
    ("zero_updates", {"ppo.num_updates": 0}, [], None, "ppo.num_updates=0"),
    ("negative_envs", {"ppo.num_envs": -8}, [], None, "ppo.num_envs=-8"),
    ("zero_unroll", {"ppo.unroll_length": 0}, [], None, "ppo.unroll_length=0"),
    ("schedule_after_training", {"prune.end_frac": 1.5}, [], None, "prune.end_frac=1.5"),
    ("uneven_batch", {"ppo.num_minibatches": 3}, [], None, "ppo.num_minibatches=3"),
    ("negative_entropy_bonus", {"ppo.entropy_coef": -0.1}, [], None, "ppo.entropy_coef=-0.1"),
    ("zero_chunk", {}, ["--chunk-size", "0"], None, "--chunk-size=0"),
    ("late_checkpoint", {}, ["--checkpoint-every", "100"], None, "--checkpoint-every=100"),
    ("no_coordinator", {}, ["--num-processes", "2"], None, "--coordinator=None"),
    ("bad_process_id", {}, ["--num-processes", "2", "--process-id", "2", "--coordinator", "127.0.0.1:9"],
     None, "--process-id=2"),
    ("other_grid", {}, [], lambda out: write_run_json(out, config_hash="deadbeef"), "--overwrite"),
    ("other_grid_unfinished", {}, [], lambda out: write_layout(out, json.dumps({"config_hash": "deadbeef"})),
     "--overwrite"),
    ("newer_schema", {}, [], lambda out: write_run_json(out, schema_version=SCHEMA_VERSION + 1),
     f"schema_version={SCHEMA_VERSION + 1}"),
    ("truncated_run_json", {}, [], lambda out: (out.mkdir(parents=True), (out / "run.json").write_text('{"sch')),
     "run.json"),
    ("truncated_layout", {}, [], lambda out: write_layout(out, '{"config_hash": "c6'), "layout.json"),
    ("truncated_config", '{"env": {"name": "point_mass"}, "ppo": {"num_en', [], None, "--config="),
    ("unknown_key", {"ppo.lerning_rate": 1e-3}, [], None, "ppo.lerning_rate"),
    ("wrong_type", {"ppo.num_envs": "eight"}, [], None, "ppo.num_envs='eight'"),
]


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if anything is jitted, or if the grid starts, before the input is rejected."""
    def refuse(*args, **kwargs):
        raise AssertionError("compiled or started the grid before rejecting bad input")

    monkeypatch.setattr(jax, "jit", refuse)
    monkeypatch.setattr(runner, "run_share", refuse)
    before = train_module.TRACE_COUNT["train"]
    yield
    assert train_module.TRACE_COUNT["train"] == before


@pytest.mark.parametrize("case, config, argv, setup, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_rejected_before_compile(case, config, argv, setup, expected, tmp_path, caplog, no_compile):
    out = tmp_path / "out"
    args = ["run", "--out", str(out), "--no-progress", *argv]
    if config is not None and "--preset" not in argv:
        path = tmp_path / "config.json"
        path.write_text(config if isinstance(config, str) else json.dumps(nested(**config)))
        args += ["--config", str(path)]
    if setup is not None:
        setup(out)
    with caplog.at_level(logging.ERROR):
        code = main(args)
    assert code == EXIT_BAD_INPUT
    assert expected in caplog.text
    assert not (out / "shards" / "host_0" / "chunks").exists()
