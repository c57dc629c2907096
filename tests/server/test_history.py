from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from common import keys
from server.history import History, RoundRecord
from server.timings import RunClock


def test_report_matches_the_documented_format(tmp_path: Path) -> None:
    history = History(config={"num-rounds": 2}, out_dir=tmp_path)
    history.teacher_accuracy = 0.8
    history.add(RoundRecord(round=1, global_accuracy=0.7, bytes_up=10, bytes_down=20, seconds=1.5))
    history.add(
        RoundRecord(round=2, global_accuracy=0.75, client_accuracy={"drone": 0.6}, seconds=2.5)
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"] == {"num-rounds": 2}
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    assert report["rounds"][1]["client_accuracy"] == {"drone": 0.6}
    assert report["rounds"][0]["distill_loss"] is None  # NaN is not JSON: written as null
    assert report["final"]["global_accuracy"] == 0.75
    assert report["final"]["seconds"] == 4.0
    assert report["final"]["bytes_up"] == 10 and report["final"]["bytes_down"] == 20


def test_report_has_the_starting_point_and_the_teacher_without_refinement(
    tmp_path: Path,
) -> None:
    history = History(config={}, out_dir=tmp_path)
    history.teacher_accuracy = 0.878  # the teacher as trained at the ground segment
    history.start_accuracy = 0.81  # the global student before round 1
    history.add(RoundRecord(round=1, global_accuracy=0.83))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["final"]["global_accuracy_start"] == 0.81
    assert report["final"]["teacher_accuracy"] == 0.878
    assert report["rounds"][0]["teacher_accuracy"] is None  # no refinement in this round


def test_report_says_where_the_runs_time_went_and_logs_each_rounds_split(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = History(config={}, out_dir=tmp_path)
    history.clock = RunClock(started=time.time() - 30.0, phases={"data": 4.0, "teacher": 6.0})
    split = {keys.PHASE_SEND: 0.5, keys.PHASE_CLIENTS: 7.0, keys.PHASE_TOTAL: 7.5}
    with caplog.at_level(logging.INFO, logger="server.history"):
        history.add(RoundRecord(round=1, global_accuracy=0.7, seconds=7.5, phase_seconds=split))
        history.add(RoundRecord(round=2, global_accuracy=0.7, seconds=2.5))  # not timed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rounds"][0]["phase_seconds"] == split
    assert report["rounds"][1]["phase_seconds"] == {}
    run = report["phase_seconds"]
    assert list(run) == ["data", "teacher", "rounds", "other", "total"]
    assert run["rounds"] == 10.0 and run["total"] == pytest.approx(30.0, abs=1.0)
    assert run["other"] == pytest.approx(run["total"] - 20.0)
    lines = [r.getMessage() for r in caplog.records if " seconds: " in r.getMessage()]
    assert lines == ["round 1 seconds: send 0.50 s, clients 7.00 s, total 7.50 s"]
