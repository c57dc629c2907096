"""run_command: each bench runs, the benchmark page is regenerated from its out folder, and the
command prints its summary; checked with stand-in benches (no Flower process)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from simulations.bench import commands
from simulations.bench.settings import FleetBench, RobustBench, ScaleBench

ROBUST = {
    "attack": "lma",
    "clean": {"final_accuracy": 0.8},
    "attacked_mean": {"final_accuracy": 0.5},
    "attacked_robust": {"final_accuracy": 0.75, "rule": "median"},
    "control": {"final_accuracy": 0.7},
    "attacks": {"lma": {"mean": 0.5, "median": 0.75}},
    "sleeper": {"sleepers_caught": 3, "sleepers_acted": 3, "caught_within_rounds": 0},
}
FLEET = {
    "scenario": "leo50",
    "target_accuracy": 0.75,
    "contact_aware": {"hours_to_target": 3.0},
    "synchronous": {"hours_to_target": 12.0},
}
SCALE = {
    "runs": [
        {
            "clients": 1000,
            "per_round": 100,
            "round_seconds": [10.0, 8.25],
            "plain_loop_seconds": 9.0,
            "overhead_ratio": 2.03,
            "peak_rss_bytes": 3 * 2**30,
        }
    ]
}


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, Path]]:
    calls: list[tuple[Path, Path]] = []
    monkeypatch.setattr(commands, "render_docs", lambda out, docs: calls.append((out, docs)))
    for name, report in (("run_robust", ROBUST), ("run_fleet", FLEET), ("run_scale", SCALE)):
        monkeypatch.setattr(commands, name, lambda bench, report=report: report)
    return calls


@pytest.mark.parametrize(
    ("bench", "summary"),
    [
        (
            RobustBench(rule="median"),
            "clean 0.8000, attacked (lma) with the mean 0.5000, attacked with median 0.7500; "
            "no-client control 0.7000; report: {out}/robust.json\n"
            "  lma         mean 0.5000  median 0.7500\n"
            "  sleepers: 3 of 3 that lied flagged, within 0 round(s)",
        ),
        (
            FleetBench(),
            "leo50: target 0.75 reached after 3.0 h (contact-aware) vs 12.0 h (synchronous), "
            "ratio 0.25; report: {out}/fleet.json",
        ),
        (
            ScaleBench(),
            "report: {out}/scale.json\n   1,000 clients, 100 per round: rounds 10.0 8.2 s, "
            "plain loop 9.0 s, overhead ratio 2.03, peak RSS 3.00 GiB",
        ),
    ],
    ids=["robust", "fleet", "scale"],
)
def test_a_bench_command_runs_renders_the_page_and_summarises(
    bench: Any, summary: str, rendered: list[tuple[Path, Path]], tmp_path: Path
) -> None:
    bench = replace(bench, out=tmp_path / "out")
    docs = tmp_path / "docs" / "benchmarks.md"
    assert commands.run_command(bench, docs) == summary.format(out=tmp_path / "out")
    assert rendered == [(tmp_path / "out", docs)]


def test_a_target_never_reached_has_no_ratio() -> None:
    report = {**FLEET, "synchronous": {"hours_to_target": None}}
    text = commands.fleet_summary(report, Path("out"))
    assert "vs not reached (synchronous), ratio -;" in text


def test_a_bench_stopped_midway_renders_the_page_from_what_it_wrote(
    rendered: list[tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def stopped(bench: RobustBench) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "run_robust", stopped)
    docs = tmp_path / "docs" / "benchmarks.md"
    with pytest.raises(KeyboardInterrupt):
        commands.run_command(RobustBench(out=tmp_path / "out"), docs)
    assert rendered == [(tmp_path / "out", docs)]


def test_a_partial_robust_report_says_what_is_not_run_yet() -> None:
    report = {**ROBUST, "missing": ["sleeper-median", "cpa-history"]}
    text = commands.robust_summary(report, Path("out"))
    assert text.splitlines()[-2] == "  not run yet: sleeper-median, cpa-history"
