"""The benchmarks' plots: people would rather look at them than read the JSON.

A run's ``accuracy.png`` is drawn by :func:`server.plots.plot_accuracy` (the ServerApp writes
it at the end of every run); a scene's class map by :mod:`onboard.class_map`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = [
    "LABELS",
    "plot_distill",
    "plot_fleet",
    "plot_robust",
]


def _save(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` (folders created) and free it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


LABELS = {
    "teacher": "(a) teacher",
    "centralized": "(b) centralised tiny",
    "fedavg": "(c) FedAvg, tiny",
    "fedkd": "(d) FedKD, tiny",
    "fedkd_hetero": "(e) FedKD, per-role students",
    "ground_only": "control: global student without clients",
}


def method_label(name: str, method: dict[str, Any]) -> str:
    """The legend label of a method (FedAvg-family: the strategy the search chose)."""
    if name == "fedavg":
        return f"(c) {method.get('strategy', 'FedAvg')}, tiny"
    return LABELS.get(name, name)


def distill_stem(run: dict[str, Any]) -> str:
    """The plot files' stem of a distill run (alpha, and the ground gap if any)."""
    gap = str(run.get("ground_gap") or "")
    return f"distill-a{run['alpha']:g}" + (f"-gap{gap.replace(':', '_')}" if gap else "")


def plot_distill(run: dict[str, Any], out: Path) -> list[Path]:
    """distill-accuracy.png (per round) and distill-bytes.png (against cumulative bytes)."""
    methods = run["methods"]
    tag = f"alpha {run['alpha']:g}, {run['clients']} clients" + (
        f", ground gap {run['ground_gap']}" if run.get("ground_gap") else ""
    )
    stem = distill_stem(run)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, m in methods.items():
        rounds = m["rounds"]
        if len(rounds) == 1:
            ax.axhline(
                rounds[0],
                ls=":",
                color="grey" if name == "teacher" else "black",
                label=f"{method_label(name, m)} {rounds[0]:.3f}",
            )
        else:
            ax.plot(range(1, len(rounds) + 1), rounds, "-", label=method_label(name, m))
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy (global / server model)")
    ax.set_title(f"Accuracy per round ({tag})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    per_round = _save(fig, out / f"{stem}-accuracy.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in ("fedavg", "fedkd", "fedkd_hetero"):
        m = methods.get(name)
        if not m or not m["rounds"]:
            continue
        n = len(m["rounds"])
        per_round_bytes = m["bytes_total"] / n
        xs = [per_round_bytes * (i + 1) / 1e6 for i in range(n)]
        ax.plot(xs, m["rounds"], "o-", ms=3, label=method_label(name, m))
    ax.set_xscale("log")
    ax.set_xlabel("cumulative bytes on the wire, up + down (MB, log scale)")
    ax.set_ylabel("test accuracy (global / server model)")
    ax.set_title(f"Accuracy against communication ({tag})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    return [per_round, _save(fig, out / f"{stem}-bytes.png")]


def plot_robust(report: dict[str, Any], path: Path) -> Path:
    """Left: global-student accuracy per round for the report's own attack (clean, each rule,
    the no-client control dashed). Right: every attack's final accuracy per rule, against the
    clean run and the control."""
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 4.6), width_ratios=(1, 1.4))
    attack = report["attack"]
    lines = {"clean, mean": report["clean"]["rounds"]}
    for name, run in report.get("runs", {}).items():
        if name.startswith(f"{attack}-"):
            lines[f"{report['attackers']} attackers, {run['rule']}"] = run["rounds"]
    if len(lines) == 1:  # a report without the matrix: its first keys
        for key in ("attacked_mean", "attacked_robust"):
            lines[f"{report['attackers']} attackers, {report[key]['rule']}"] = report[key]["rounds"]
    for label, ys in lines.items():
        curves.plot(range(1, len(ys) + 1), ys, "o-", ms=3, label=label)
    control = report["control"]["rounds"]
    curves.plot(range(1, len(control) + 1), control, "k--", alpha=0.6, label="control: no client")
    curves.set_xlabel("round")
    curves.set_ylabel("global-student test accuracy")
    curves.set_title(f"{attack}, {report['clients']} clients")
    curves.grid(alpha=0.3)
    curves.legend(loc="lower right", fontsize=7)
    attacks = report.get("attacks", {})
    rules = report.get("rules") or (list(next(iter(attacks.values()))) if attacks else [])
    width = 0.8 / max(len(rules), 1)
    for i, rule in enumerate(rules):  # a rule not run yet under an attack: no bar
        xs = [a + (i - (len(rules) - 1) / 2) * width for a in range(len(attacks))]
        ys = [attacks[a].get(rule, float("nan")) for a in attacks]
        bars.bar(xs, ys, width, label=rule)
    bars.axhline(report["clean"]["final_accuracy"], color="green", ls=":", label="clean")
    bars.axhline(
        report["control"]["final_accuracy"],
        color="k",
        ls="--",
        alpha=0.6,
        label="control: no client",
    )
    bars.set_xticks(range(len(attacks)), list(attacks), rotation=20, fontsize=8)
    bars.set_ylabel("final global-student test accuracy")
    low = min(
        [report["control"]["final_accuracy"], *(v for a in attacks.values() for v in a.values())]
    )
    bars.set_ylim(max(0.0, low - 0.05), 1.0)
    bars.set_title(
        f"every attack, {report['attackers']} attackers (scale {report.get('attack_scale', 1):g})"
    )
    bars.grid(alpha=0.3, axis="y")
    bars.legend(loc="lower right", fontsize=7, ncol=2)
    return _save(fig, path)


def plot_fleet(report: dict[str, Any], path: Path) -> Path:
    """Global-student accuracy against simulated hours, both schedules, with the target."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label in (("contact_aware", "contact-aware"), ("synchronous", "synchronous")):
        curve = report[key]["curve"]
        h = report[key]["hours_to_target"]
        suffix = f" (target at {h:.1f} h)" if h is not None else " (target not reached)"
        (line,) = ax.plot(
            [p[0] for p in curve], [p[1] for p in curve], "o-", ms=3, label=label + suffix
        )
        control = report[key].get("control_curve")
        if control:
            ax.plot(
                [p[0] for p in control],
                [p[1] for p in control],
                "--",
                color=line.get_color(),
                alpha=0.6,
                label=f"{label}: control without clients",
            )
    ax.axhline(report["target_accuracy"], color="grey", ls=":", label="target")
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("global-student test accuracy")
    ax.set_title(f"scenario {report['scenario']}: accuracy against simulated time")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)
