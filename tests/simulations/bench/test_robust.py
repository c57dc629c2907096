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


def test_bench_robust_runs_each_attack_under_each_rule_against_the_control(
    fixture_data: Path, tmp_path: Path
) -> None:
    base = on_fixture_data(robust_defaults(), fixture_data).with_values(
        # few epochs of the ground's head refits: three federations, each a few seconds
        {
            "num-clients": 4,
            "num-rounds": 2,
            "attack": "sleeper",
            "attack-after": 1,
            "head-epochs": 5,
        }
    )
    out = tmp_path / "out"
    bench = RobustBench(
        base=base,
        attackers=1,
        rule="history",
        out=out,
        attacks=("sleeper",),
        rules=("mean", "history"),
    )
    report = run_robust(bench)
    assert json.loads((out / "robust.json").read_text()) == json.loads(json.dumps(report))
    control = report["control"]
    assert len(control["rounds"]) == 2 and control["final_accuracy"] == control["rounds"][-1]
    gain = report["clean"]["final_accuracy"] - control["final_accuracy"]
    assert report["clean_gain_over_control"] == gain
    # the documented keys are the base's attack under the mean and under --rule
    assert report["attacked_robust"]["rule"] == "history"
    assert report["attacked_mean"] == report["runs"]["sleeper-mean"]
    assert report["attacks"] == {
        "sleeper": {
            r: report["runs"][f"sleeper-{r}"]["final_accuracy"] for r in ("mean", "history")
        }
    }
    # the regime where client knowledge counts: class statistics in the ground gap
    run_config = json.loads((out / "robust-c4-s42" / "clean" / "report.json").read_text())
    cfg = RunConfig.from_mapping(run_config["config"])
    assert cfg.client_statistics == 1 and cfg.archive_gap == "3:0.05"
    # every round of the history run reports its trust; the sleeper section reads it
    history = json.loads((out / "robust-c4-s42" / "sleeper-history" / "report.json").read_text())
    for record in history["rounds"]:
        assert record["trust"]["threshold"] == cfg.trust_threshold
    assert report["sleeper"]["switch_round"] == 2
    for name in ("clean", "attacked_mean", "attacked_robust"):
        assert len(report[name]["rounds"]) == 2
    assert (out / "robust.png").stat().st_size > 1000  # drawn by run_robust
    if CHECK.is_file():
        done = subprocess.run(
            [sys.executable, str(CHECK), str(out / "robust.json")], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
