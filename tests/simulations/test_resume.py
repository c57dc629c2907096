"""A server killed with SIGKILL at three points of a run resumes without losing or repeating
a round, and ends where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.processes import descendants, is_alive

pytestmark = pytest.mark.integration  # starts real processes

ROUNDS = 5


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "simulate", "--no-progress", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _start(fixture_data: Path, out: Path) -> subprocess.Popen[bytes]:
    return _cli(
        "--clients", "3", "--rounds", str(ROUNDS), "--data-dir", str(fixture_data),
        "--out", str(out),
        "--set", "fraction-train=1.0",
        "--set", "reference-per-round=8",
        "--set", "teacher-epochs=1",
        "--set", "global-pretrain-epochs=1",
        "--set", "preinstall-epochs=1",
        "--set", "teacher-refine-epochs=1",  # the refined teacher is server state too
        "--set", "metrics-address=",
        "--set", "metrics-linger=0",
    )  # fmt: skip


def _rounds(out: Path) -> list[int]:
    try:
        return [r["round"] for r in json.loads((out / "report.json").read_text())["rounds"]]
    except (OSError, ValueError, KeyError):
        return []


def _kill_after(cli: subprocess.Popen[bytes], out: Path, rounds: int) -> None:
    """SIGKILL the whole server side (CLI, SuperLink, simulation, Ray) once ``rounds`` are in
    the report: nothing gets to clean up or flush, as in a power cut."""
    deadline = time.monotonic() + 300
    while len(_rounds(out)) < rounds:
        assert cli.poll() is None, cli.stdout.read().decode() if cli.stdout else ""
        assert time.monotonic() < deadline, f"round {rounds} not completed in time"
        time.sleep(0.2)
    tree = [cli.pid, *descendants(cli.pid)]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    cli.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(is_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(is_alive(p) for p in tree)


def _finish(cli: subprocess.Popen[bytes]) -> None:
    output = cli.communicate(timeout=600)[0].decode()
    assert cli.returncode == 0, output


@pytest.fixture(scope="module")
def killed_after_round_1(fixture_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose server was SIGKILLed once round 1 was in the report; each test
    resumes its own copy (a run resumes in the folder it is given)."""
    out = tmp_path_factory.mktemp("resume") / "killed"
    _kill_after(_start(fixture_data, out), out, 1)
    assert (out / "checkpoint.pt").is_file()
    return out


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, symlinks=True)
    return to


def test_sigkill_at_three_points_and_resume(
    fixture_data: Path, tmp_path: Path, killed_after_round_1: Path
) -> None:
    straight = tmp_path / "straight"
    _finish(_start(fixture_data, straight))
    expected = json.loads((straight / "report.json").read_text())

    out = _copy(killed_after_round_1, tmp_path / "crashing")  # killed after round 1
    for point in (2, 4):
        cli = _cli("--resume", str(out))
        _kill_after(cli, out, point)
        assert (out / "checkpoint.pt").is_file()
    _finish(_cli("--resume", str(out)))
    report = json.loads((out / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == list(range(1, ROUNDS + 1))
    got = report["final"]["global_accuracy"]
    assert abs(got - expected["final"]["global_accuracy"]) <= 0.005
    for a, b in zip(report["rounds"], expected["rounds"], strict=True):
        assert a["clients_ok"] == b["clients_ok"] == 3
        assert abs(a["teacher_accuracy"] - b["teacher_accuracy"]) <= 0.005


def test_resume_refuses_another_config(tmp_path: Path, killed_after_round_1: Path) -> None:
    out = _copy(killed_after_round_1, tmp_path / "run")
    config = out / "run-config.toml"
    config.write_text(config.read_text().replace("alpha = 0.5", "alpha = 0.3"))
    done = _cli("--resume", str(out))
    output = done.communicate(timeout=300)[0].decode()
    assert done.returncode != 0
    assert "alpha=0.5 (now 0.3)" in output, output
    # refused before the ground's preparation and before any Flower process started
    assert "SuperLink" not in output and "teacher" not in output, output


def test_nothing_to_resume_is_a_clear_error(tmp_path: Path) -> None:
    done = _cli("--resume", str(tmp_path))
    output = done.communicate(timeout=120)[0].decode()
    assert done.returncode == 2
    assert "nothing to resume" in output and "checkpoint.pt" in output
