from __future__ import annotations

import json
from pathlib import Path

from server.history import History, RoundRecord


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
