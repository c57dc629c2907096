"""What each ``skydistill bench`` command does once its arguments are parsed: run the bench,
regenerate the benchmark page from every report in the bench's ``out``, and say in a few
lines what came out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulations.bench.distill import run_bench
from simulations.bench.docs import render_docs
from simulations.bench.docs_format import format_hours
from simulations.bench.fleet import run_fleet
from simulations.bench.onboard import run_onboard
from simulations.bench.robust import run_robust
from simulations.bench.scale import run_scale
from simulations.bench.settings import (
    DistillBench,
    FleetBench,
    OnboardBench,
    RobustBench,
    ScaleBench,
)

Bench = DistillBench | RobustBench | OnboardBench | FleetBench | ScaleBench


def run_command(bench: Bench, docs: Path) -> str:
    """Run ``bench``, then regenerate ``docs``; the summary to print. A bench stopped midway
    (Ctrl-C, SIGTERM, an error) regenerates ``docs`` too, from what its reports hold by then
    (``bench robust`` writes its report after every federation)."""
    out = bench.out
    try:
        if isinstance(bench, DistillBench):
            summary = distill_summary(run_bench(bench), out)
        elif isinstance(bench, RobustBench):
            summary = robust_summary(run_robust(bench), out)
        elif isinstance(bench, OnboardBench):
            summary = onboard_summary(run_onboard(bench), out)
        elif isinstance(bench, FleetBench):
            summary = fleet_summary(run_fleet(bench), out)
        else:
            summary = scale_summary(run_scale(bench), out)
    except BaseException:
        render_docs(out, docs)
        raise
    render_docs(out, docs)
    return summary


def distill_summary(run: dict[str, Any], out: Path) -> str:
    lines = [f"alpha {run['alpha']}, {run['clients']} clients, {run['rounds']} rounds:"]
    for name, m in run["methods"].items():
        client = m.get("client_accuracy_mean")
        lines.append(
            f"  {name:13s} final {m['final_accuracy']:.4f}  clients "
            + (f"{client:.4f}" if client is not None else "   -  ")
            + f"  {m['bytes_per_client_round']:>10,.0f} B/client-round  {m['seconds']:6.0f} s"
        )
    return "\n".join(lines)


def robust_summary(report: dict[str, Any], out: Path) -> str:
    lines = [
        f"clean {report['clean']['final_accuracy']:.4f}, attacked ({report['attack']}) with the "
        f"mean {report['attacked_mean']['final_accuracy']:.4f}, attacked with "
        f"{report['attacked_robust']['rule']} "
        f"{report['attacked_robust']['final_accuracy']:.4f}; no-client control "
        f"{report['control']['final_accuracy']:.4f}; report: {out / 'robust.json'}"
    ]
    for attack, accs in (report.get("attacks") or {}).items():
        lines.append(
            f"  {attack:11s} " + "  ".join(f"{rule} {acc:.4f}" for rule, acc in accs.items())
        )
    if report.get("missing"):
        lines.append(f"  not run yet: {', '.join(report['missing'])}")
    sleeper = report.get("sleeper")
    if sleeper:
        lines.append(
            f"  sleepers: {sleeper['sleepers_caught']} of {sleeper['sleepers_acted']} that lied "
            f"flagged, within {sleeper['caught_within_rounds']} round(s)"
        )
    return "\n".join(lines)


def onboard_summary(report: dict[str, Any], out: Path) -> str:
    lines = [f"{len(report['models'])} model files; report: {out / 'onboard.json'}"]
    for m in report["models"]:
        lines.append(
            f"  {m['name']:14s} {m['format']:11s} {m['file_bytes']:>10,} B "
            f"{m['latency_ms_median']:8.3f} ms {m['throughput_per_s']:9.0f}/s "
            f"accuracy {m['accuracy']:.4f} (fp32 {m['accuracy_fp32']:.4f})"
        )
    return "\n".join(lines)


def fleet_summary(report: dict[str, Any], out: Path) -> str:
    aware = report["contact_aware"]["hours_to_target"]
    sync = report["synchronous"]["hours_to_target"]
    ratio = f"{aware / sync:.2f}" if aware is not None and sync else "-"
    return (
        f"{report['scenario']}: target {report['target_accuracy']:.2f} reached after "
        f"{format_hours(aware)} (contact-aware) vs {format_hours(sync)} (synchronous), "
        f"ratio {ratio}; report: {out / 'fleet.json'}"
    )


def scale_summary(report: dict[str, Any], out: Path) -> str:
    lines = [f"report: {out / 'scale.json'}"]
    for run in report["runs"]:
        lines.append(
            f"  {run['clients']:>6,} clients, {run['per_round']} per round: rounds "
            + " ".join(f"{s:.1f}" for s in run["round_seconds"])
            + f" s, plain loop {run['plain_loop_seconds']:.1f} s, overhead ratio "
            f"{run['overhead_ratio']:.2f}, peak RSS {run['peak_rss_bytes'] / 2**30:.2f} GiB"
        )
    return "\n".join(lines)
