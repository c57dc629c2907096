"""bench fleet without a federation: the report format, the plot, and the round budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import RunConfig
from common.errors import ConfigError
from common.fleet.schedule import ContactAwareSchedule, SynchronousSchedule
from common.settings import PROJECT_ROOT
from server.fleet import build_schedule
from simulations.bench.fleet import (
    control_curve,
    hours_to_target,
    rounds_in_horizon,
    server_updates,
)
from simulations.bench.plots import plot_fleet
from simulations.bench.settings import FleetBench, fleet_defaults
from simulations.simulate import with_paths


def test_hours_to_target_is_the_first_curve_point_at_or_above_it() -> None:
    curve = [[0.0, 0.1], [1.0, 0.5], [2.0, 0.75], [3.0, 0.7], [4.0, 0.9]]
    assert hours_to_target(curve, 0.75) == 2.0
    assert hours_to_target(curve, 0.95) is None


def test_the_control_follows_each_schedules_server_updates() -> None:
    rounds = [
        {"simulated_hours": 1.0, "distill_loss": 0.3},
        {"simulated_hours": 2.0, "distill_loss": None},  # no knowledge arrived in this window
        {"simulated_hours": 3.0, "distill_loss": 0.2},
    ]
    assert server_updates(rounds) == [1, 1, 2]
    without_clients = [0.1, 0.4, 0.6]  # after 0, 1, 2 updates towards the teacher alone
    assert control_curve(rounds, without_clients) == [
        [0.0, 0.1],
        [1.0, 0.4],
        [2.0, 0.4],
        [3.0, 0.6],
    ]


def test_round_budget_and_schedules_from_the_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKYDISTILL_CACHE", str(tmp_path / "cache"))
    base = fleet_defaults().with_values({"scenario": "small", "round-window-minutes": 90.0})
    bench = FleetBench(base=base, hours=30.0, aware_hours=6.0)
    aware = with_paths(bench.config("contact-aware"), tmp_path)
    assert aware.num_clients == 7 and aware.scenario.endswith("small.toml")
    assert rounds_in_horizon(bench, aware) == 4  # 6 h in 90-minute windows
    assert isinstance(build_schedule(aware), ContactAwareSchedule)
    sync = with_paths(bench.config("synchronous"), tmp_path)
    schedule = build_schedule(sync)
    assert isinstance(schedule, SynchronousSchedule)
    rounds = rounds_in_horizon(bench, sync)
    ends = [schedule.plan_round(r).end for r in range(1, rounds + 1)]
    assert ends[-1] >= 30.0 > ends[-2]  # the last round is the one that crosses the horizon
    wrong = RunConfig.from_mapping({**sync.to_mapping(), "num-clients": 8})
    with pytest.raises(ConfigError, match="num-clients = 7"):
        build_schedule(wrong)


@pytest.mark.integration
def test_report_passes_the_shared_checker_and_plots(tmp_path: Path) -> None:
    report = {
        "scenario": "leo50",
        "target_accuracy": 0.75,
        "contact_aware": {
            "hours_to_target": 4.0,
            "curve": [[0.0, 0.1], [4.0, 0.76]],
            "control_curve": [[0.0, 0.1], [4.0, 0.5]],
            "control_hours_to_target": None,
        },
        "synchronous": {"hours_to_target": None, "curve": [[0.0, 0.1], [9.5, 0.6]]},
    }
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(report))
    assert plot_fleet(report, tmp_path / "fleet.png").stat().st_size > 1000
    checker = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"
    if checker.is_file():
        done = subprocess.run(
            [sys.executable, str(checker), str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
