"""Stopping `skydistill simulate` mid-run stops every Flower and Ray process it started."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.processes import descendants, is_alive

pytestmark = pytest.mark.integration  # starts real processes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_leaves_no_process_behind(
    sig: signal.Signals, fixture_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "simulate",
            "--clients",
            "3",
            "--rounds",
            "500",
            "--data-dir",
            str(fixture_data),
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "teacher-epochs=1",
            "--set",
            "global-pretrain-epochs=1",
            "--set",
            "preinstall-epochs=1",  # one epoch per ground model: the other tests' cache
            "--set",
            "metrics-address=",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    rounds = 0
    while rounds < 2:  # wait until the federation is really running
        assert cli.poll() is None, cli.stdout.read().decode() if cli.stdout else ""
        assert time.monotonic() < deadline, "no round completed in time"
        time.sleep(1)
        try:
            rounds = len(json.loads((out / "report.json").read_text())["rounds"])
        except (OSError, ValueError, KeyError):
            rounds = 0
    tree = descendants(cli.pid)
    assert len(tree) >= 3  # SuperLink, SuperExec, simulation (+ Ray)
    cli.send_signal(sig)
    code = cli.wait(timeout=60)
    assert code != 0
    time.sleep(1)
    left = [pid for pid in tree if is_alive(pid)]
    assert left == [], f"processes left running: {left}"
