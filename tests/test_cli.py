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
