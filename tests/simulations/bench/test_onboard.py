"""skydistill bench onboard on fixture data with tiny settings: the report's exact format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.main import main
from tests.student_fixture import TrainedStudent

KEYS = {
    "name",
    "format",
    "params",
    "file_bytes",
    "latency_ms_median",
    "latency_ms_p90",
    "throughput_per_s",
    "accuracy",
    "accuracy_fp32",
}
FORMATS = ["torch", "torchscript", "onnx", "onnx-int8"]
TINY = ["--runs", "3", "--warmup", "1", "--batch-size", "8", "--throughput-seconds", "0"]
QUICK_TRAINING = ["--set", "teacher-epochs=1", "--set", "preinstall-epochs=1"]


def _check_report(report: dict[str, object], names: list[str]) -> list[dict[str, object]]:
    assert list(report) == ["models"]
    models = report["models"]
    assert isinstance(models, list)
    assert [(m["name"], m["format"]) for m in models] == [(n, f) for n in names for f in FORMATS]
    for m in models:
        assert set(m) == KEYS
        assert isinstance(m["params"], int) and m["params"] > 0
        assert isinstance(m["file_bytes"], int) and m["file_bytes"] > 0
        assert 0 < m["latency_ms_median"] <= m["latency_ms_p90"]
        assert m["throughput_per_s"] > 0
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["accuracy_fp32"] <= 1.0
    by = {(m["name"], m["format"]): m for m in models}
    for n in names:
        assert len({by[n, f]["params"] for f in FORMATS}) == 1
        assert len({by[n, f]["accuracy_fp32"] for f in FORMATS}) == 1
        assert by[n, "torch"]["accuracy"] == by[n, "torch"]["accuracy_fp32"]
        assert by[n, "onnx-int8"]["file_bytes"] < by[n, "onnx"]["file_bytes"]
    return models


def test_bench_onboard_on_preinstalled_students(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, docs = tmp_path / "out", tmp_path / "docs" / "benchmarks.md"
    argv = ["bench", "onboard", "--data-dir", str(fixture_data), "--test-limit", "10"]
    assert main([*argv, *TINY, *QUICK_TRAINING, "--out", str(out), "--docs", str(docs)]) == 0
    models = _check_report(
        json.loads((out / "onboard.json").read_text()),
        ["satellite", "drone", "ground-station", "teacher"],
    )
    params = {m["name"]: m["params"] for m in models}
    assert params["satellite"] == 47_482  # the tiny RGB student
    assert params["satellite"] < params["drone"] < params["ground-station"] < params["teacher"]
    text = docs.read_text()
    assert "## On-board students (`skydistill bench onboard`)" in text
    assert "| satellite | onnx-int8 |" in text and "| teacher | torchscript |" in text
    assert "onboard.json" in capsys.readouterr().out


def test_bench_onboard_takes_students_from_a_folder(
    ms_student: TrainedStudent, fixture_data: Path, tmp_path: Path
) -> None:
    students = tmp_path / "students"
    students.mkdir()
    shutil.copy(ms_student.path, students / ms_student.path.name)
    out = tmp_path / "out"
    argv = ["bench", "onboard", "--students", str(students), "--data-dir", str(fixture_data)]
    extra = ["--set", "teacher-epochs=1", "--out", str(out), "--docs", str(tmp_path / "b.md")]
    assert main([*argv, *TINY, *extra]) == 0
    models = _check_report(json.loads((out / "onboard.json").read_text()), ["satellite", "teacher"])
    assert models[0]["params"] == 47_482 + 10 * 16 * 9  # 13 bands instead of 3
