"""Regenerate ``docs/benchmarks.md`` from the JSON reports (never edited by hand)."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from simulations.bench.plots import distill_stem, method_label


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (
        f"{os.cpu_count()} cores ({cpu}), no GPU, Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _points(x: float | None) -> str:
    return "" if x is None else f"{100 * x:+.1f}"


def _cost(m: dict[str, Any]) -> str:
    steps, seconds = m.get("client_steps_per_round"), m.get("client_seconds_per_round")
    if steps is None or seconds is None:
        return ""
    return f"{steps:,.0f} / {seconds:.2f} s"


def _bytes(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f} MB"
    if x >= 1e3:
        return f"{x / 1e3:.1f} kB"
    return f"{x:.0f} B"


def _figure(src: Path, img: Path, docs_dir: Path, alt: str) -> list[str]:
    """Copy the plot ``src`` (if there is one) beside the page and link it."""
    if not src.is_file():
        return []
    img.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, img / src.name)
    return ["", f"![{alt}]({os.path.relpath(img / src.name, docs_dir)})"]


def _distill_section(report: dict[str, Any], out: Path, img: Path, docs_dir: Path) -> list[str]:
    lines = [
        "## Federated distillation against FedAvg (`skydistill bench distill`)",
        "",
        "```",
        "skydistill bench distill --clients 100 --alpha 0.1 --rounds 30",
        "skydistill bench distill --clients 100 --alpha 0.5 --rounds 30",
        "skydistill bench distill --clients 100 --alpha 0.1 --rounds 30 --ground-gap 3:0.05",
        "```",
        "",
        "Accuracies in %, on the common test set unless marked local. *clients* is the mean "
        "over all clients of the model each would deploy (its own student for distillation, "
        "the global model for FedAvg and the centralised model); *local* is the same on each "
        "client's own held-out split. Bytes are counted as they travel (up + down), per "
        "client-round and in total. (c) is the best of Flower's FedAvg, FedProx and FedAdam by "
        "validation accuracy; FedAvg's optimiser, learning rate, batch-norm handling and local "
        "epochs come from the search listed under each table, FedProx's mu and FedAdam's "
        "server rate from their own searches on those settings. The control row is "
        "the global student of (d) and (e) on the same schedule towards the teacher's labels "
        "alone, without any client: what (d) gains over it is the clients' contribution "
        "(*vs control*). *vs start* is the mean over clients of the deployed model minus the "
        "model that client started from (its pre-installed student). *scarce* is the mean "
        "recall over the classes an archive gap makes scarce at the ground. *client cost* is "
        "the samples through a training step and the seconds of a client's train function, "
        "per client-round.",
        "",
    ]
    for run in report["runs"]:
        methods = run["methods"]
        minutes = run.get("wall_seconds", 0) / 60
        lines += [
            f"### alpha {run['alpha']:g}, {run['clients']} clients, {run['rounds']} rounds, "
            f"test set: {run['test_set']}"
            + (f", ground gap {run['ground_gap']}" if run.get("ground_gap") else "")
            + f" ({minutes:.0f} min for the whole invocation)",
            "",
            "| method | final | vs control | scarce | clients | vs start | local | satellite "
            "| drone | ground station | bytes / client-round | bytes total | client cost "
            "| seconds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, m in _rows(methods):
            role = m.get("client_accuracy_by_role", {})
            lines.append(
                f"| {label} | {_pct(m['final_accuracy'])} "
                f"| {_points(m.get('gain_over_control'))} "
                f"| {_pct(m.get('scarce_class_accuracy'))} "
                f"| {_pct(m.get('client_accuracy_mean'))} "
                f"| {_points(m.get('client_gain_over_start'))} "
                f"| {_pct(m.get('client_local_accuracy_mean'))} "
                f"| {_pct(role.get('satellite'))} | {_pct(role.get('drone'))} "
                f"| {_pct(role.get('ground-station'))} "
                f"| {_bytes(m['bytes_per_client_round'])} | {_bytes(m['bytes_total'])} "
                f"| {_cost(m)} | {m['seconds']:.0f} |"
            )
        ground = run.get("ground_seconds")
        if ground:
            steps = ", ".join(f"{k} {v:.0f} s" for k, v in ground.items() if k != "total")
            lines += ["", f"Ground preparation {ground['total']:.0f} s ({steps}; ~0 = cached)."]
        lines += _search_lines(methods.get("fedavg", {}))
        stem = distill_stem(run)
        for kind in ("accuracy", "bytes"):
            src = out / f"{stem}-{kind}.png"
            lines += _figure(src, img, docs_dir, kind)
        lines.append("")
    return lines


def _rows(methods: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, method) per table row: the reported FedAvg-family member under (c), the other
    members right after it."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, m in methods.items():
        if name != "fedavg":
            rows.append((method_label(name, m), m))
            continue
        rows.append((f"{method_label(name, m)} (best of the FedAvg family)", m))
        family = m.get("fedavg_family", {}).values()
        rows += [(method_label(name, other), other) for other in family]
    return rows


def _search_lines(fedavg: dict[str, Any]) -> list[str]:
    """One sentence per FedAvg-family member's search: its points and what was chosen."""
    lines: list[str] = []
    members = [(fedavg.get("strategy", "FedAvg"), fedavg), *fedavg.get("fedavg_family", {}).items()]
    for strategy, m in members:
        search = m.get("search")
        if not search:
            continue
        points = ", ".join(
            f"{_point(p)}: {_pct(p['validation_accuracy'])}" for p in search["points"]
        )
        lines += [
            "",
            f"{strategy} search ({search['rounds']} rounds per point, scored on "
            f"{search['scored_on']}): {points}. Chosen: {_point(search['chosen'])}.",
        ]
    return lines


def _point(p: dict[str, Any]) -> str:
    text = (
        f"{p['optimizer']} lr {p['learning_rate']:g} bn {p['batch_norm']}"
        f"{epochs_note(p.get('local_epochs', 1))}"
    )
    if p.get("strategy") == "FedProx":
        text += f" mu {p['proximal_mu']:g}"
    if p.get("strategy") == "FedAdam":
        text += f" eta {p['server_eta']:g}"
    return text


def epochs_note(epochs: int) -> str:
    """`` 3 epochs`` for a search point with more than one local epoch, else nothing."""
    return f" {epochs} epochs" if epochs != 1 else ""


def _robust_section(r: dict[str, Any], out: Path, img: Path, docs_dir: Path) -> list[str]:
    rule = r["attacked_robust"]["rule"]
    lines = [
        "## Byzantine clients (`skydistill bench robust`)",
        "",
        "```",
        f"skydistill bench robust --clients {r['clients']} --attackers {r['attackers']} "
        f"--rounds {r['rounds']} --rule {rule}",
        "```",
        "",
        f"{r['attackers']} of {r['clients']} clients send well-formed false predictions "
        f"({r['attack']}: random, inverted or constant); alpha {r['alpha']:g}. Global-student "
        "test accuracy in %:",
        "",
        "| run | final | seconds |",
        "|---|---:|---:|",
        f"| clean, mean | {_pct(r['clean']['final_accuracy'])} | {r['clean']['seconds']:.0f} |",
        f"| attacked, mean | {_pct(r['attacked_mean']['final_accuracy'])} "
        f"| {r['attacked_mean']['seconds']:.0f} |",
        f"| attacked, {rule} | {_pct(r['attacked_robust']['final_accuracy'])} "
        f"| {r['attacked_robust']['seconds']:.0f} |",
        "",
        f"The plain mean loses {r['mean_loss_points']:.1f} points to the attack; {rule} "
        f"loses {r['robust_loss_points']:.1f}.",
    ]
    return [*lines, *_figure(out / "robust.png", img, docs_dir, "robust"), ""]


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
            f"| {m['name']} | {m['format']} | {m['params']:,} | {_bytes(m['file_bytes'])} "
            f"| {m['latency_ms_median']:.3f} | {m['latency_ms_p90']:.3f} "
            f"| {m['throughput_per_s']:,.0f} | {_pct(m['accuracy'])} "
            f"| {_pct(m['accuracy_fp32'])} |"
        )
    return [*lines, ""]


def format_hours(h: float | None) -> str:
    """Simulated hours to a target, or that it was not reached."""
    return "not reached" if h is None else f"{h:.1f} h"


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
        f"{_pct(r['target_accuracy'])} % on the test split (details in "
        "[fleets.md](fleets.md)):",
        "",
        "| schedule | hours to target | rounds | final accuracy |",
        "|---|---:|---:|---:|",
    ]
    for name, m in (("contact-aware", aware), ("synchronous", sync)):
        curve = m.get("curve") or [[0.0, None]]
        lines.append(
            f"| {name} | {format_hours(m['hours_to_target'])} | {len(curve) - 1} "
            f"| {_pct(curve[-1][1])} at {curve[-1][0]:.0f} h |"
        )
    if aware["hours_to_target"] and sync["hours_to_target"]:
        ratio = aware["hours_to_target"] / sync["hours_to_target"]
        lines += ["", f"Contact-aware needs {ratio:.2f} of the synchronous schedule's hours."]
    return [*lines, *_figure(out / "fleet.png", img, docs_dir, "fleet"), ""]


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
        "of the simulation's process tree (details in [scale.md](scale.md)).",
        "",
        "| clients | per round | round seconds | plain loop (s) | overhead | peak RSS |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in report["runs"]:
        rounds = ", ".join(f"{x:.0f}" for x in r["round_seconds"])
        lines.append(
            f"| {r['clients']:,} | {r['per_round']} | {rounds} | {r['plain_loop_seconds']:.0f} "
            f"| {r['overhead_ratio']:.2f} | {r['peak_rss_bytes'] / 2**30:.2f} GiB |"
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
        lines += _distill_section(json.loads(distill.read_text()), out, img, docs.parent)
    robust = out / "robust.json"
    if robust.is_file():
        lines += _robust_section(json.loads(robust.read_text()), out, img, docs.parent)
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
