"""Command line: clear errors and distinct exit codes for bad input."""

import logging

import pytest

from robustprune.cli import EXIT_BAD_INPUT, main


@pytest.mark.parametrize(
    "argv, setting",
    [
        (["run", "--preset", "defualt"], "preset='defualt'"),
        (["run", "--env", "hoper"], "env.name='hoper'"),
        (["run", "--seeds", "0"], "--seeds=0"),
    ],
)
def test_bad_input_exits_with_message(argv, setting, caplog, tmp_path):
    with caplog.at_level(logging.ERROR):
        code = main(argv + ["--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    assert setting in caplog.text
    assert not (tmp_path / "out").exists()


def test_unknown_env_suggests_close_match(caplog, tmp_path):
    with caplog.at_level(logging.ERROR):
        main(["run", "--env", "hoper", "--out", str(tmp_path)])
    assert "'hopper'" in caplog.text


def test_list_prints_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "default" in out
    assert "mad" in out
    assert "inverted_pendulum" in out


def test_cost_counts_positive_eps_adversaries():
    from robustprune.cost import adversary_env_steps, estimate_cost
    from robustprune.presets import get_preset

    quick = get_preset("hopper-cpu")  # 6 cells, ε = 0, 0.075, 0.15, 2 learning rates, 512k steps each
    assert adversary_env_steps(quick) == 2 * 6 * 2 * 2 * 512_000
    protocol = get_preset("hopper")  # 180 cells, 5 ε > 0, 3 learning rates, 489 updates of 2048 steps
    assert adversary_env_steps(protocol) == 2 * 180 * 5 * 3 * 489 * 2048
    assert adversary_env_steps(get_preset("smoke")) == 0
    assert estimate_cost(protocol).seconds_2cpu > estimate_cost(protocol).train_env_steps / 23e3


def test_preset_and_config_together_rejected(caplog, tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"env": {"name": "point_mass"}}')
    with caplog.at_level(logging.ERROR):
        code = main(["run", "--preset", "smoke", "--config", str(config), "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    assert "--preset='smoke'" in caplog.text
    assert not (tmp_path / "out").exists()
