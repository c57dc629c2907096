"""Regenerate ``docs/benchmarks.md`` from the JSON reports (never edited by hand)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from simulations.bench.docs_distill import distill_section
from simulations.bench.docs_format import byte_size, figure, format_hours, pct
from simulations.bench.docs_robust import robust_section
from simulations.bench.report import cpu_model


def machine() -> str:
    import torch

    return (
        f"{os.cpu_count()} cores ({cpu_model()}), no GPU, Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )


def _onboard_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "## On-board students (`skydistill bench onboard`)",
        "",
        "```",
        "skydistill bench onboard",
        "```",
        "",
        "Each role's student and the teacher as deployable files: eager torch (the student "
        "file), TorchScript, ONNX in onnxruntime and int8 ONNX (static quantisation calibrated "
        "on the reference set). Latency is one tile (batch 1) with one thread (default "
        "`--threads 1`), median and 90th percentile; throughput is tiles per second in "
        "batches of `--batch-size` (default 256). Accuracy in % on the test split (all of it "
        "unless `--test-limit` was given); fp32 is the torch model's. Times include handing a "
        "float32 NumPy batch to the runtime (for torch formats, a channels_last copy).",
        "",
        "| model | format | parameters | file | latency median (ms) | p90 (ms) "
        "| tiles / s | accuracy | fp32 accuracy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in report["models"]:
        lines.append(
            f"| {m['name']} | {m['format']} | {m['params']:,} | {byte_size(m['file_bytes'])} "
            f"| {m['latency_ms_median']:.3f} | {m['latency_ms_p90']:.3f} "
            f"| {m['throughput_per_s']:,.0f} | {pct(m['accuracy'])} "
            f"| {pct(m['accuracy_fp32'])} |"
        )
    return [*lines, ""]


def _fleet_section(r: dict[str, Any], out: Path, img: Path, docs_dir: Path) -> list[str]:
    aware, sync = r["contact_aware"], r["synchronous"]
    lines = [
        "## Contact-aware scheduling (`skydistill bench fleet`)",
        "",
        "```",
        f"skydistill bench fleet --scenario {r['scenario']}",
        "```",
        "",
        f"Simulated hours of orbit time until the global student reaches "
        f"{pct(r['target_accuracy'])} % on the test split (details in "
        "[fleets.md](fleets.md)):",
        "",
        "| schedule | hours to target | rounds | final accuracy |",
        "|---|---:|---:|---:|",
    ]
    for name, m in (("contact-aware", aware), ("synchronous", sync)):
        curve = m.get("curve") or [[0.0, None]]
        lines.append(
            f"| {name} | {format_hours(m['hours_to_target'])} | {len(curve) - 1} "
            f"| {pct(curve[-1][1])} at {curve[-1][0]:.0f} h |"
        )
    if aware["hours_to_target"] and sync["hours_to_target"]:
        ratio = aware["hours_to_target"] / sync["hours_to_target"]
        lines += ["", f"Contact-aware needs {ratio:.2f} of the synchronous schedule's hours."]
    return [*lines, *figure(out / "fleet.png", img, docs_dir, "fleet"), ""]


def _scale_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "## Fleets at scale on Ray (`skydistill bench scale`)",
        "",
        "```",
        "skydistill bench scale --clients 1000 10000 --per-round 100 --rounds 3",
        "```",
        "",
        "Registered virtual clients on Flower's simulation engine, 100 sampled per round; "
        "shards drawn from the client pool with replacement across clients. Round seconds are "
        "the clients' phase (configure_train to aggregate_train); the plain loop replays the "
        "very same train messages through the ClientApp's train function in one process; "
        "overhead = Flower + Ray seconds / plain-loop seconds; memory is the peak summed RSS "
        "of the simulation's process tree (details in [scale.md](scale.md)); "
        "client compute = plain-loop seconds / the seconds of its training steps and "
        "predictions.",
        "",
        "| clients | per round | round seconds | plain loop (s) | overhead | client compute "
        "| peak RSS |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        rounds = ", ".join(f"{x:.0f}" for x in r["round_seconds"])
        compute = r.get("client_compute_ratio")
        compute_text = f"{compute:.2f}" if isinstance(compute, int | float) else "-"
        lines.append(
            f"| {r['clients']:,} | {r['per_round']} | {rounds} | {r['plain_loop_seconds']:.0f} "
            f"| {r['overhead_ratio']:.2f} | {compute_text} "
            f"| {r['peak_rss_bytes'] / 2**30:.2f} GiB |"
        )
    return [*lines, ""]


def render_docs(out: Path, docs: Path) -> Path:
    """Write ``docs`` from every report found in ``out``; plots are copied beside it."""
    img = docs.parent / "img"
    lines = [
        "# Benchmarks",
        "",
        "Generated by the `skydistill bench` commands from their JSON reports in "
        "`bench/out/`; do not edit by hand.",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    distill = out / "distill.json"
    if distill.is_file():
        lines += distill_section(json.loads(distill.read_text()), out, img, docs.parent)
    robust = out / "robust.json"
    if robust.is_file():
        lines += robust_section(json.loads(robust.read_text()), out, img, docs.parent)
    onboard = out / "onboard.json"
    if onboard.is_file():
        lines += _onboard_section(json.loads(onboard.read_text()))
    fleet = out / "fleet.json"
    if fleet.is_file():
        lines += _fleet_section(json.loads(fleet.read_text()), out, img, docs.parent)
    scale = out / "scale.json"
    if scale.is_file():
        lines += _scale_section(json.loads(scale.read_text()))
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text("\n".join(lines).rstrip() + "\n")
    return docs
