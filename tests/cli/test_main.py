from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.main import build_parser, main
from common.config import RunConfig
from server.checkpoint import Checkpoint
from simulations import simulate as simulate_module
from simulations.simulate import finished_report, resume_config, write_run_config


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


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise KeyError(name)


HELP_COMMANDS = [
    ["simulate"],
    ["bench", "distill"],
    ["bench", "robust"],
    ["bench", "onboard"],
    ["bench", "fleet"],
    ["bench", "scale"],
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_help_gives_every_option_a_text_and_its_default_once(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    for name in command:
        parser = _subparser(parser, name)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[-1]
        text = formatter._expand_help(action) if action.help else ""
        assert len(text) > 10, f"{flag} has no help text"
        assert "None" not in text, f"{flag}: {text}"
        switch = isinstance(action, argparse._StoreTrueAction | argparse._AppendAction)
        assert text.count("default") == (0 if switch else 1), f"{flag}: {text}"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    out = capsys.readouterr().out
    assert "default: None" not in out and "(default: [])" not in out


def _finished_run(out: Path, rounds: int, done: int) -> None:
    """A run folder as a run of ``rounds`` rounds leaves it after ``done`` of them."""
    out.mkdir(parents=True)
    cfg = RunConfig(num_rounds=rounds, num_clients=3, out_dir=str(out))
    write_run_config(cfg, out / "run-config.toml")
    records = [{"round": r, "global_accuracy": 0.5 + 0.1 * r} for r in range(1, done + 1)]
    Checkpoint(
        round=done,
        config=cfg.to_mapping(),
        data="0" * 20,
        knowledge=np.zeros((4, 10), dtype=np.float32),
        student={"w": torch.zeros(2)},
        optimizer={},
        sampler=(),
        history={"teacher_accuracy": 0.9, "start_accuracy": 0.4, "rounds": records},
    ).save(out)
    final = {
        "global_accuracy": records[-1]["global_accuracy"],
        "seconds": 12.0,
        "teacher_accuracy": None,
        "rounds_completed": done,
    }
    (out / "report.json").write_text(json.dumps({"rounds": records, "final": final}))


def test_resume_of_a_finished_run_reports_it_without_starting_a_superlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_superlink(*args: object, **kwargs: object) -> None:
        raise AssertionError("a SuperLink was started for a finished run")

    monkeypatch.setattr(simulate_module, "SuperLink", no_superlink)  # a tripwire, not a mock
    out = tmp_path / "run"
    _finished_run(out, rounds=2, done=2)
    started = time.monotonic()
    assert main(["simulate", "--resume", str(out)]) == 0
    assert time.monotonic() - started < 10
    stdout = capsys.readouterr().out
    assert f"the run in {out} is complete: all 2 rounds are done" in stdout
    assert "global-student accuracy 0.7000 after 2 rounds, 12 s of rounds" in stdout
    assert not (out / "flwr-home").exists()


def test_an_unfinished_run_is_resumed_not_reported(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _finished_run(out, rounds=3, done=2)
    assert finished_report(out, resume_config(out)) is None
    (tmp_path / "edited").mkdir()
    _finished_run(tmp_path / "edited" / "run", rounds=2, done=2)
    edited = tmp_path / "edited" / "run"
    (edited / "report.json").unlink()  # killed between the last checkpoint and the report
    assert finished_report(edited, resume_config(edited)) is None


def test_resume_refuses_run_config_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    _finished_run(out, rounds=2, done=2)
    assert main(["simulate", "--resume", str(out), "--rounds", "5", "--set", "seed=1"]) == 2
    err = capsys.readouterr().err
    assert f"--resume {out} reads the run config from {out}/run-config.toml" in err
    assert "drop --rounds, --set" in err
