"""Integration: 3 clients, 2 rounds, through a real SuperLink and Flower's Ray simulation engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations.simulate import simulate

pytestmark = pytest.mark.integration  # starts real processes

REF_PER_ROUND = 8


def _three_clients(fixture_data: Path, **overrides: Any) -> RunConfig:
    """3 clients, 2 rounds, every client each round, 8 reference tiles: a small real run."""
    return RunConfig(
        data_dir=str(fixture_data),
        num_clients=3,
        num_rounds=2,
        fraction_train=1.0,
        reference_per_round=REF_PER_ROUND,
        teacher_epochs=1,  # one epoch per ground model: the other integration tests' cache
        global_pretrain_epochs=1,
        preinstall_epochs=1,
        codec="int8",
        metrics_linger=0.0,
        **overrides,
    )


def test_three_clients_two_rounds_only_soft_predictions_travel(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = _three_clients(fixture_data, evaluate_every=2)
    report = simulate(cfg, tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert on_disk == report
    assert (tmp_path / "run" / "accuracy.png").stat().st_size > 1000
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    nodes = set()
    for rnd in report["rounds"]:
        assert rnd["clients_ok"] == 3 and rnd["clients_failed"] == 0
        assert rnd["bytes_up"] > 0 and rnd["bytes_down"] > 0
        assert 0.0 <= rnd["global_accuracy"] <= 1.0
        assert set(rnd["client_accuracy"]) == {"satellite", "drone", "ground-station"}
        assert len(rnd["replies"]) == 3
        for reply in rnd["replies"]:
            nodes.add(reply["node"])
            assert reply["records"] == ["info", "metrics", "predictions"]
            # int8: (n requested, classes) probabilities and one scale per row, nothing else
            assert reply["arrays"] == {
                "predictions/probs": [REF_PER_ROUND, 10],
                "predictions/scale": [REF_PER_ROUND],
            }
    assert len(nodes) == 3
    # Round 2 is an evaluation round: each client scored its own student on the test split.
    assert report["rounds"][0]["client_test_accuracy"] == {}
    evaluated = report["rounds"][1]["client_test_accuracy"]
    assert set(evaluated) == {"satellite", "drone", "ground-station"}
    assert all(0.0 <= a <= 1.0 for a in evaluated.values())
    mean = report["rounds"][1]["client_test_accuracy_mean"]
    assert mean == pytest.approx(np.mean(list(evaluated.values())))
    final = report["final"]
    assert final["rounds_completed"] == 2
    assert final["global_accuracy"] == report["rounds"][-1]["global_accuracy"]
    assert np.isfinite(final["seconds"])
    _check_seconds(report, tmp_path / "run")
    checker = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"
    if checker.is_file():  # the format checker other tools use, when ../shared is beside us
        done = subprocess.run(
            [sys.executable, str(checker), str(tmp_path / "run" / "report.json")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _check_seconds(report: dict[str, Any], out: Path) -> None:
    """Where the run's time went (report.json's phase_seconds) and each round's split."""
    from server.timings import GROUND_SECONDS_FILE

    run = report["phase_seconds"]
    # the ground as simulate prepared it, before Flower; then the ServerApp's part
    expected = {"data", "teacher", "global-student", "flower-start", "server-ground", "setup"}
    assert expected | {"rounds", "finish", "other", "total"} <= set(run)
    assert not (out / GROUND_SECONDS_FILE).exists()  # the ServerApp took simulate's figures
    assert run["rounds"] == pytest.approx(sum(r["seconds"] for r in report["rounds"]))
    assert run["flower-start"] > 0.0 and run["total"] > run["rounds"]
    timed = sum(v for k, v in run.items() if k not in ("other", "total"))
    assert run["other"] == pytest.approx(run["total"] - timed, abs=1e-6)
    for rnd in report["rounds"]:
        phases = rnd["phase_seconds"]
        assert list(phases)[:4] == ["send", "clients", "receive", "aggregate"]
        assert {"distil", "evaluate", "checkpoint"} <= set(phases)
        assert phases["total"] == rnd["seconds"]
        assert sum(phases.values()) - phases["total"] == pytest.approx(phases["total"])
        assert phases["clients"] >= rnd["client_seconds_max"] > 0.0
    assert "client-evaluate" in report["rounds"][1]["phase_seconds"]  # evaluate-every = 2
    assert "client-evaluate" not in report["rounds"][0]["phase_seconds"]
    log = (out / "server.log").read_text()
    assert "round 2 seconds: send " in log and "run seconds: data " in log
    assert "server-ground seconds: data " in log  # the ServerApp's own cache loads


def test_statistics_mode_sends_statistics_once_and_deploys_the_grounds_head(
    fixture_data: Path, tmp_path: Path
) -> None:
    from clients.storage import latest_student
    from common.student_file import load_student

    cfg = _three_clients(fixture_data, client_statistics=1, head_epochs=5)
    out = tmp_path / "run"
    report = simulate(cfg, out, progress=False)
    first, second = report["rounds"]
    assert first["clients_ok"] == second["clients_ok"] == 3
    for reply in first["replies"]:  # statistics travel once per client ...
        assert reply["records"] == ["info", "metrics", "predictions", "statistics"]
        assert reply["arrays"]["statistics/sums"] == [10, 64]
        assert reply["arrays"]["statistics/scatter"] == [64 * 65 // 2]
    for reply in second["replies"]:  # ... and are kept at the ground
        assert reply["records"] == ["info", "metrics", "predictions"]
    assert first["bytes_up"] > second["bytes_up"]
    # each client deploys its pre-installed backbone with a head the ground fitted
    from common.federation import load_federation
    from common.preinstalled import preinstalled_student

    run_cfg = RunConfig.from_mapping(
        {**cfg.to_mapping(), "data-dir": str(fixture_data.resolve()), "out-dir": str(out)}
    )
    fed = load_federation(run_cfg)
    for k in range(3):
        role = run_cfg.role_of(k)
        path = latest_student(out, role, k)
        assert path is not None
        kept = load_student(path).build().state_dict()
        start = preinstalled_student(run_cfg, fed, run_cfg.arch_of(role)).state_dict()
        for name, value in start.items():
            if name.startswith("head."):
                assert not np.allclose(kept[name].numpy(), value.numpy())
            elif value.is_floating_point():
                np.testing.assert_allclose(kept[name].numpy(), value.numpy(), atol=1e-6)
