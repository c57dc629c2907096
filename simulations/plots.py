"""Plots people would rather look at than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_accuracy(report: dict[str, Any], path: Path) -> Path:
    """Global-student accuracy per round, per-role client accuracy, and the teacher's level."""
    rounds = report["rounds"]
    xs = [r["round"] for r in rounds]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(xs, [r["global_accuracy"] for r in rounds], "o-", lw=2, label="global student (test)")
    roles = sorted({role for r in rounds for role in r.get("client_accuracy", {})})
    for role in roles:
        ys = [r.get("client_accuracy", {}).get(role) for r in rounds]
        ax.plot(
            xs, [y if y is not None else float("nan") for y in ys], "--", label=f"{role} (local)"
        )
    teacher = report.get("final", {}).get("teacher_accuracy")
    if teacher is not None:
        ax.axhline(teacher, color="grey", ls=":", label=f"teacher {teacher:.3f}")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("skydistill: accuracy per round")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
