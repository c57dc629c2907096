"""``skydistill submit`` before it reaches Flower: the run config is checked, ``--resume`` needs
a checkpoint in out-dir and submits nothing for a run whose rounds are all done. (The submission
itself, to a real SuperLink, is tests/deploy/test_resilience.py.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from common.config_rules import InvalidSettings
from common.errors import ConfigError
from server.checkpoint import Checkpoint
from simulations.deployment import submit_deployment_run, toml_text

APP = Path(__file__).resolve().parents[2]


def _run_toml(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(toml_text({"num-rounds": 3, "out-dir": str(tmp_path / "out"), **values}))
    return path


def _checkpoint(out: Path, rounds: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    Checkpoint(
        round=rounds, config={}, data="", knowledge=np.zeros((2, 2)), student={}, optimizer={},
        sampler=(), history={"rounds": []},
    ).save(out)  # fmt: skip


def test_toml_text_reads_back_as_written() -> None:
    values = {"data-dir": 'C:\\data "x"', "num-rounds": 3, "teacher-mix": 0.5, "resume": 1}
    assert tomllib.loads(toml_text(values)) == values


def test_a_bad_run_config_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match="num-rounds"):
        submit_deployment_run(tmp_path, APP, _run_toml(tmp_path, **{"num-rounds": "ten"}))
    with pytest.raises(ConfigError, match="unknown run-config keys: nun-rounds"):
        submit_deployment_run(tmp_path, APP, _run_toml(tmp_path, **{"nun-rounds": 3}))
    with pytest.raises(ConfigError, match="not a Flower app folder"):
        submit_deployment_run(tmp_path, tmp_path, _run_toml(tmp_path))


def test_resume_needs_an_out_dir_and_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs the run config's out-dir"):
        submit_deployment_run(tmp_path, APP, _run_toml(tmp_path, **{"out-dir": ""}), resume=True)
    with pytest.raises(ConfigError, match="nothing to resume in .*no checkpoint.pt"):
        submit_deployment_run(tmp_path, APP, _run_toml(tmp_path), resume=True)


def test_a_complete_run_is_not_submitted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(tmp_path / "out", rounds=3)
    done = submit_deployment_run(tmp_path / "no-link", APP, _run_toml(tmp_path), resume=True)
    assert done.run_id is None and done.resumed_after == 3 == done.num_rounds
    code = main(["submit", str(_run_toml(tmp_path)), "--resume", "--app", str(APP)])
    assert code == 0
    assert "the run is complete: all 3 rounds are done" in capsys.readouterr().out
