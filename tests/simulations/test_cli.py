from __future__ import annotations

from pathlib import Path

import pytest

from simulations.cli import build_parser, main


def test_missing_data_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Dataset not found in" in err and "nowhere" in err
    assert "SKYDISTILL_DATA" in err and "skydistill data fetch eurosat" in err
    assert not (tmp_path / "o" / "flwr-home").exists()  # nothing was started


def test_bad_run_config_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", "--set", "teacher-mix=2", "--out", str(tmp_path)])
    assert code == 2
    assert "teacher-mix" in capsys.readouterr().err
    assert main(["simulate", "--set", "nonsense", "--out", str(tmp_path)]) == 2


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--help"])
    out = capsys.readouterr().out
    for option in ("--clients", "--rounds", "--alpha", "--dataset", "--seed", "--out"):
        assert option in out


def test_unknown_scenario_is_refused_with_the_shipped_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--scenario", "atlantis", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "atlantis" in err and "leo50" in err
    assert not (tmp_path / "flwr-home").exists()
