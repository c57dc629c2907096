"""bench robust's report from its runs' summaries (no Flower process): the documented keys
for the base's attack, the attack x rule matrix, and the sleeper's detection from trust."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common.settings import PROJECT_ROOT
from simulations.bench.docs_robust import robust_section
from simulations.bench.plots import plot_robust
from simulations.bench.robust import (
    REPORT,
    assemble,
    compared,
    earlier_summaries,
    machine,
    planned_runs,
)
from simulations.bench.robust_trust import partition_of, sleeper_detection, trust_outcome
from simulations.bench.settings import RobustBench

CHECK = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"


def _run(final: float, rule: str) -> dict[str, Any]:
    return {"final_accuracy": final, "rounds": [0.7, final], "seconds": 1.0, "rule": rule}


def _passes_the_checker(report: dict[str, Any], tmp_path: Path) -> None:
    """The format checker other tools use accepts ``report`` (when ../shared is beside us)."""
    path = tmp_path / "robust.json"
    path.write_text(json.dumps(report))
    if CHECK.is_file():
        done = subprocess.run(
            [sys.executable, str(CHECK), str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _bench() -> RobustBench:
    return RobustBench(
        attacks=("lma", "sleeper"), rules=("mean", "median", "history"), rule="median"
    )


def test_planned_runs_are_clean_and_each_attack_under_each_rule() -> None:
    runs = planned_runs(_bench())
    # the documented keys first, then rule by rule: a stopped invocation has whole columns
    assert list(runs) == [
        "clean",
        "lma-mean",
        "lma-median",
        "sleeper-mean",
        "sleeper-median",
        "lma-history",
        "sleeper-history",
    ]
    assert runs["clean"] == {"aggregation": "mean", "attackers": 0.0}
    assert runs["sleeper-history"] == {
        "aggregation": "history",
        "attackers": 0.2,
        "attack": "sleeper",
    }


def test_the_report_keeps_its_keys_for_the_base_attack_and_adds_the_matrix(tmp_path: Path) -> None:
    bench = RobustBench(
        attacks=("lma", "sleeper"), rules=("mean", "median", "history"), rule="median"
    )
    finals = {"lma": (0.70, 0.84, 0.85), "sleeper": (0.78, 0.85, 0.86)}
    results = {"clean": _run(0.86, "mean")}
    for attack, accs in finals.items():
        for rule, acc in zip(bench.rules, accs, strict=True):
            results[f"{attack}-{rule}"] = _run(acc, rule)
    control = {"final_accuracy": 0.78, "rounds": [0.75, 0.78], "seconds": 2.0}
    report = assemble(bench, results, control, 10.0)
    assert report["attack"] == "lma" and report["attacked_mean"] == results["lma-mean"]
    assert report["attacked_robust"]["rule"] == "median"
    assert report["attacks"] == {
        a: dict(zip(bench.rules, accs, strict=True)) for a, accs in finals.items()
    }
    assert abs(report["mean_loss_points"] - 16.0) < 1e-9
    assert abs(report["robust_loss_points"] - 2.0) < 1e-9
    assert report["worst_attack"] == "lma"
    assert abs(report["best_robust_loss_points"]["lma"] - 1.0) < 1e-9
    assert abs(report["clean_gain_over_control"] - 0.08) < 1e-9
    assert report["control"] == control and report["client_statistics"] == 1
    assert report["complete"] is True and report["missing"] == []
    assert report["machine"] == machine(bench.base) and report["rules"] == list(bench.rules)
    _passes_the_checker(report, tmp_path)


def _trust(r: int, scored: dict[str, float], flagged: list[str]) -> dict[str, Any]:
    return {"round": r, "trust": {"threshold": 0.5, "scored": scored, "flagged": flagged}}


def test_sleeper_detection_reads_when_each_sleeper_lied_and_when_it_was_flagged(
    tmp_path: Path,
) -> None:
    assert partition_of("ground-station-17") == 17 and partition_of("node-x") is None
    rounds = [
        _trust(1, {"satellite-0": 1.0, "drone-31": 0.9}, []),
        _trust(2, {"drone-1": 1.0}, []),
        _trust(4, {"satellite-0": 0.4, "drone-40": 0.9}, ["satellite-0"]),  # turns, caught
        _trust(5, {"drone-1": 0.55}, ["satellite-0"]),  # turns, not yet under 0.5
        _trust(6, {"drone-1": 0.3}, ["satellite-0", "drone-1"]),
    ]
    (tmp_path / "report.json").write_text(json.dumps({"rounds": rounds}))
    found = sleeper_detection(tmp_path, attackers=20, cfg=_bench().base)
    assert found["switch_round"] == 4
    assert found["acted"] == {"satellite-0": 4, "drone-1": 5}
    assert found["flagged"] == {"satellite-0": 4, "drone-1": 6}
    assert found["delay_rounds"] == {"satellite-0": 0, "drone-1": 1}
    assert found["caught_within_rounds"] == 1 and found["sleepers_caught"] == 2
    assert found["trust"]["drone-1"] == {2: 1.0, 5: 0.55, 6: 0.3}
    outcome = trust_outcome({"rounds": rounds}, attackers=20)
    assert outcome["flagged_attackers"] == 2 and outcome["flagged_honest"] == 0


def test_a_finished_run_with_the_same_settings_is_not_run_again(tmp_path: Path) -> None:
    from simulations.bench.robust import finished_run

    cfg = _bench().config(aggregation="median", attackers=0.2, attack="lma")
    report = {"config": cfg.to_mapping(), "final": {"rounds_completed": cfg.num_rounds}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert finished_run(cfg, tmp_path) == report
    moved = cfg.with_values({"out-dir": "/elsewhere", "data-dir": "/data"})
    assert finished_run(moved, tmp_path) == report  # paths do not change a result
    assert finished_run(cfg.with_values({"attack": "cpa"}), tmp_path) is None
    assert finished_run(cfg, tmp_path / "nothing") is None
    report["final"]["rounds_completed"] = cfg.num_rounds - 1  # interrupted: run it again
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert finished_run(cfg, tmp_path) is None


def _partial() -> dict[str, Any]:
    """The report of _bench() stopped after four federations."""
    results = {
        "clean": _run(0.86, "mean"),
        "lma-mean": _run(0.70, "mean"),
        "lma-median": _run(0.84, "median"),
        "sleeper-mean": _run(0.80, "mean"),
    }
    control = {"final_accuracy": 0.78, "rounds": [0.75, 0.78], "seconds": 2.0}
    return assemble(_bench(), results, control, 10.0)


def test_a_partial_report_has_the_documented_keys_and_names_what_is_missing(
    tmp_path: Path,
) -> None:
    report = _partial()
    assert report["complete"] is False
    assert report["missing"] == ["sleeper-median", "lma-history", "sleeper-history"]
    assert report["attacks"] == {"lma": {"mean": 0.70, "median": 0.84}, "sleeper": {"mean": 0.80}}
    assert report["best_robust_loss_points"]["sleeper"] is None
    assert report["worst_attack"] == "lma" and "sleeper" not in report
    _passes_the_checker(report, tmp_path)


def test_summaries_are_reused_only_from_a_report_of_the_same_kind_of_machine(
    tmp_path: Path,
) -> None:
    bench = _bench()
    cfg = bench.config(aggregation="mean", attackers=0.0)
    results = {
        name: {**_run(acc, "mean"), "config": compared(cfg)}
        for name, acc in (("clean", 0.86), ("lma-mean", 0.70), ("lma-median", 0.84))
    }
    control = {"final_accuracy": 0.78, "rounds": [0.78], "seconds": 2.0, "config": {"x": 1}}
    here = machine(bench.base)
    path = tmp_path / REPORT
    path.write_text(json.dumps(assemble(bench, results, control, 10.0, here)))
    found = earlier_summaries(path, here)
    assert set(found) == {"clean", "control", "lma-mean", "lma-median"}
    assert found["clean"]["config"] == compared(cfg)
    assert earlier_summaries(path, {**here, "precision": "other"}) == {}
    assert earlier_summaries(tmp_path / "absent.json", here) == {}
    path.write_text("{not json")
    assert earlier_summaries(path, here) == {}


def test_the_docs_and_the_plot_show_a_partial_matrix_and_name_what_is_missing(
    tmp_path: Path,
) -> None:
    report = _partial()
    out = tmp_path / "out"
    plot_robust(report, out / "robust.png")
    lines = robust_section(report, out, tmp_path / "docs" / "img", tmp_path / "docs")
    assert "| sleeper | 80.0 | - | - | - |" in lines
    assert any(line.startswith("Not run yet (3 federations") for line in lines)
    assert any(report["machine"]["cpu"] in line for line in lines)
