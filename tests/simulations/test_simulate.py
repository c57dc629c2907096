"""Integration: 3 clients, 2 rounds, through a real SuperLink and Flower's Ray simulation engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations.simulate import simulate

REF_PER_ROUND = 8


def test_three_clients_two_rounds_only_soft_predictions_travel(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(
        data_dir=str(fixture_data),
        num_clients=3,
        num_rounds=2,
        fraction_train=1.0,
        reference_per_round=REF_PER_ROUND,
        teacher_epochs=2,
        codec="int8",
        metrics_linger=0.0,
        evaluate_every=2,
    )
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
    checker = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"
    if checker.is_file():  # the format checker other tools use, when ../shared is beside us
        done = subprocess.run(
            [sys.executable, str(checker), str(tmp_path / "run" / "report.json")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
