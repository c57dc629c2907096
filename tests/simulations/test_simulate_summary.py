"""What ``skydistill simulate`` prints at the end of a run: the result and where time went."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.simulate import _print_final, mean_phases


def test_the_mean_round_keeps_the_phase_order_and_adds_up_to_the_mean_total() -> None:
    rounds = [
        {"send": 1.0, "clients": 10.0, "other": 1.0, "total": 12.0},
        {"send": 1.0, "clients": 6.0, "client-evaluate": 4.0, "other": 1.0, "total": 12.0},
    ]
    mean = mean_phases(rounds)
    assert list(mean) == ["send", "clients", "client-evaluate", "other", "total"]
    assert mean == {"send": 1.0, "clients": 8.0, "client-evaluate": 2.0, "other": 1.0, "total": 12}
    assert sum(mean.values()) - mean["total"] == pytest.approx(mean["total"])


def test_the_summary_shows_the_runs_and_a_typical_rounds_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = {"send": 0.25, "clients": 10.0, "distil": 2.0, "other": 0.75, "total": 13.0}
    report = {
        "phase_seconds": {"data": 25.0, "teacher": 119.4, "rounds": 26.0, "total": 180.0},
        "rounds": [{"phase_seconds": split}, {"phase_seconds": split}],
        "final": {"global_accuracy": 0.88, "rounds_completed": 2, "seconds": 26.0},
    }
    _print_final(report, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("global-student accuracy 0.8800 after 2 rounds, 26 s of rounds")
    assert lines[1] == (
        "where the run's time went: data 25.0 s, teacher 119.4 s, rounds 26.0 s, total 180.0 s"
    )
    assert lines[2] == (
        "a round on average: send 0.25 s, clients 10.00 s, distil 2.00 s, other 0.75 s, "
        "total 13.00 s"
    )
    # a report from before the phases were timed: the result line alone
    del report["phase_seconds"]
    report["rounds"] = [{}, {}]
    _print_final(report, tmp_path)
    assert len(capsys.readouterr().out.splitlines()) == 1
