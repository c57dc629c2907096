"""The ``bench distill`` section of ``docs/benchmarks.md``: a table per run of
``distill.json``, each FedAvg-family member's search, and the run's plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulations.bench.docs_format import byte_size, cost, figure, pct, signed_points
from simulations.bench.plots import distill_stem, method_label


def distill_section(report: dict[str, Any], out: Path, img: Path, docs_dir: Path) -> list[str]:
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
                f"| {label} | {pct(m['final_accuracy'])} "
                f"| {signed_points(m.get('gain_over_control'))} "
                f"| {pct(m.get('scarce_class_accuracy'))} "
                f"| {pct(m.get('client_accuracy_mean'))} "
                f"| {signed_points(m.get('client_gain_over_start'))} "
                f"| {pct(m.get('client_local_accuracy_mean'))} "
                f"| {pct(role.get('satellite'))} | {pct(role.get('drone'))} "
                f"| {pct(role.get('ground-station'))} "
                f"| {byte_size(m['bytes_per_client_round'])} | {byte_size(m['bytes_total'])} "
                f"| {cost(m)} | {m['seconds']:.0f} |"
            )
        ground = run.get("ground_seconds")
        if ground:
            steps = ", ".join(f"{k} {v:.0f} s" for k, v in ground.items() if k != "total")
            lines += ["", f"Ground preparation {ground['total']:.0f} s ({steps}; ~0 = cached)."]
        lines += _search_lines(methods.get("fedavg", {}))
        stem = distill_stem(run)
        for kind in ("accuracy", "bytes"):
            src = out / f"{stem}-{kind}.png"
            lines += figure(src, img, docs_dir, kind)
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
            f"{_point(p)}: {pct(p['validation_accuracy'])}" for p in search["points"]
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
