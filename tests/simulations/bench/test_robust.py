"""Integration: ``bench robust`` end to end on fixture data, through a real SuperLink."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations.bench.robust import run_robust
from simulations.bench.settings import RobustBench, robust_defaults
from tests.simulations.bench.bench_config import on_fixture_data

pytestmark = pytest.mark.integration  # starts real processes

CHECK = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"


def test_bench_robust_reads_every_run_against_the_no_client_control(
    fixture_data: Path, tmp_path: Path
) -> None:
    base = on_fixture_data(robust_defaults(), fixture_data).with_values(
        {"num-clients": 4, "num-rounds": 2}
    )
    out = tmp_path / "out"
    bench = RobustBench(base=base, attackers=1, rule="median", out=out)
    report = run_robust(bench)
    assert json.loads((out / "robust.json").read_text()) == json.loads(json.dumps(report))
    control = report["control"]
    assert len(control["rounds"]) == 2 and control["final_accuracy"] == control["rounds"][-1]
    gain = report["clean"]["final_accuracy"] - control["final_accuracy"]
    assert report["clean_gain_over_control"] == gain
    assert report["attacked_robust"]["rule"] == "median"
    # the attacks poison soft predictions: clients send them (no statistics mode)
    assert (
        RunConfig.from_mapping(
            json.loads((out / "robust-c4-s42" / "clean" / "report.json").read_text())["config"]
        ).client_statistics
        == 0
    )
    for name in ("clean", "attacked_mean", "attacked_robust"):
        assert len(report[name]["rounds"]) == 2
    assert (out / "robust.png").stat().st_size > 1000  # drawn by run_robust
    if CHECK.is_file():
        done = subprocess.run(
            [sys.executable, str(CHECK), str(out / "robust.json")], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
