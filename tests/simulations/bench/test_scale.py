"""``skydistill bench scale`` on the fixture tiles: a real Flower + Ray run, then the replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations.bench.scale import REPORT, run_scale
from simulations.bench.settings import ScaleBench

pytestmark = pytest.mark.integration  # starts real processes


def test_scale_report_has_the_format_other_tools_read(fixture_data: Path, tmp_path: Path) -> None:
    base = RunConfig(
        data_dir=str(fixture_data),
        teacher_epochs=1,  # one epoch per ground model: the other integration tests' cache
        preinstall_epochs=1,
        global_pretrain_epochs=1,
        reference_per_round=8,
        num_rounds=2,
        shard_size=6,
        max_in_flight=2,  # fewer than the 4 clients of a round: the window on real Flower + Ray
    )
    bench = ScaleBench(base=base, clients=(40,), per_round=4, out=tmp_path)
    report = run_scale(bench)
    assert json.loads((tmp_path / REPORT).read_text()) == report
    (run,) = report["runs"]
    assert (run["clients"], run["per_round"], run["rounds"]) == (40, 4, 2)
    assert len(run["round_seconds"]) == 2 and all(s > 0 for s in run["round_seconds"])
    # Every sampled client trained once per round, in Flower and again in the plain loop.
    assert run["client_rounds"] == run["clients_ok"] == run["clients_selected"] == 8
    assert run["max_in_flight"] == 2
    assert run["plain_loop_seconds"] > 0
    assert run["overhead_ratio"] == sum(run["round_seconds"]) / run["plain_loop_seconds"]
    # train and predict are most of a client round, and the parts add up to it
    assert (
        1
        < run["client_compute_ratio"]
        == pytest.approx(run["plain_loop_seconds"] / run["client_compute_seconds"])
    )
    parts = run["client_round_ms"]
    assert parts["train"] > 0 and parts["predict"] > 0
    # SuperLink, SuperExec and flwr-simulation ran below the actors once Ray was up
    assert run["flower_processes_reniced"] == 3 and run["flower_niceness"] == 19
    assert run["cpu_seconds_by_process"]["ray::ClientAppActor"] > 0
    # The tree held the SuperLink, the ServerApp and Ray's processes, well over 200 MB.
    assert run["peak_rss_bytes"] > 200e6 and run["peak_processes"] >= 4
    assert any(name.startswith("ray::") for name in run["peak_rss_by_process"])
    checker = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"
    if checker.is_file():
        done = subprocess.run(
            [sys.executable, str(checker), str(tmp_path / REPORT)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
