"""``accuracy.png``: a run's accuracy per round, drawn from its ``report.json`` dictionary.

The ServerApp writes it at the end of every run (``flwr run .`` as well as ``skydistill
simulate``); it lives here, not in ``simulations``, because the server imports only ``common``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from common.atomic import atomic_write
from server.history import History, finite_json

log = logging.getLogger(__name__)

ACCURACY_PLOT = "accuracy.png"
ROLE_MARKERS = ("s", "^", "D", "v", "P", "X")
MIN_SPAN = 0.05  # the y axis shows at least 5 accuracy points, however flat the curve


def _finite(value: object) -> float | None:
    """A finite number, or None (null in JSON, NaN in memory, or missing)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def y_limits(values: list[float]) -> tuple[float, float]:
    """Limits that fit ``values`` with a margin, at least ``MIN_SPAN`` wide (not 0 to 1: that
    flattens a curve moving by a few points). The margin may pass 0 or 1, so that a point at
    0.0 or 1.0 is not cut in half by the frame."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = max((high - low) * 0.06, (MIN_SPAN - (high - low)) / 2, 0.01)
    return low - pad, high + pad


def plot_accuracy(report: dict[str, Any], path: Path) -> Path:
    """Write :func:`accuracy_figure` of ``report`` to ``path`` (PNG, atomically)."""
    fig = accuracy_figure(report)
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    finally:
        plt.close(fig)
    return path


def accuracy_figure(report: dict[str, Any]) -> Figure:
    """Global-student accuracy per round (from round 0, before any client took part), the
    per-role mean of the clients' accuracy on their own held-out splits, the teacher as
    trained and, with refinement, the refined teacher per round."""
    rounds = report.get("rounds", [])
    final = report.get("final", {})
    xs = [int(r["round"]) for r in rounds]
    ys = [_finite(r.get("global_accuracy")) for r in rounds]
    start = _finite(final.get("global_accuracy_start"))
    if start is not None:
        xs, ys = [xs[0] - 1 if xs else 0, *xs], [start, *ys]  # round 0
    shown: list[float] = [y for y in ys if y is not None]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.plot(xs, _nan(ys), "o-", lw=2, ms=5, label="global student (test split)")
    roles = sorted({role for r in rounds for role in r.get("client_accuracy", {})})
    for i, role in enumerate(roles):
        role_ys = [_finite(r.get("client_accuracy", {}).get(role)) for r in rounds]
        shown += [y for y in role_ys if y is not None]
        ax.plot(
            [int(r["round"]) for r in rounds],
            _nan(role_ys),
            ls="--",
            marker=ROLE_MARKERS[i % len(ROLE_MARKERS)],
            ms=5,
            label=f"{role} clients (own held-out split)",
        )
    teacher = _finite(final.get("teacher_accuracy"))
    if teacher is not None:
        shown.append(teacher)
        ax.axhline(teacher, color="grey", ls=":", label=f"teacher {teacher:.3f}")
    refined = [_finite(r.get("teacher_accuracy")) for r in rounds]
    if any(y is not None for y in refined):  # teacher-refine-epochs > 0
        shown += [y for y in refined if y is not None]
        ax.plot(
            [int(r["round"]) for r in rounds],
            _nan(refined),
            ":",
            marker="*",
            color="grey",
            label="refined teacher",
        )
    ax.set_ylim(*y_limits(shown))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(xs) == 1:
        ax.set_xlim(xs[0] - 1, xs[0] + 1)
    ax.set_xlabel("round (0: before the first round)" if start is not None else "round")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    # beside the axes: inside, it hides the points of some line whatever corner it takes
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("skydistill: accuracy per round")
    fig.tight_layout()
    return fig


def _nan(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def finish_report(history: History) -> Path | None:
    """Write the final report and its ``accuracy.png``; a plot that cannot be written is
    logged, and the run still counts as completed."""
    path = history.write()
    if history.out_dir is not None:
        plot = history.out_dir / ACCURACY_PLOT
        try:
            plot_accuracy(finite_json(history.to_dict()), plot)
        except (OSError, ValueError) as exc:
            log.error("cannot write %s (%s): report.json has every value it shows", plot, exc)
        else:
            log.info("accuracy per round plotted in %s", plot)
    return path
