"""accuracy.png: integer round ticks, round 0, markers on every line, a y axis fitted to data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.image import imread

from server.history import History, RoundRecord, finite_json
from server.plots import MIN_SPAN, accuracy_figure, plot_accuracy, y_limits


def _report(tmp_path: Path) -> dict[str, Any]:
    """A report as the ServerApp writes it (through History), read back from JSON."""
    history = History(config={"num-rounds": 3}, out_dir=tmp_path)
    history.teacher_accuracy = 0.878
    history.start_accuracy = 0.80
    history.add(RoundRecord(round=1, global_accuracy=0.82, client_accuracy={"drone": 0.7}))
    history.add(
        RoundRecord(
            round=2, global_accuracy=0.84, client_accuracy={"drone": 0.72, "satellite": 0.66}
        )
    )
    history.add(RoundRecord(round=3, global_accuracy=0.85, client_accuracy={"drone": 0.75}))
    report: dict[str, Any] = json.loads((tmp_path / "report.json").read_text())
    return report


def test_the_plot_starts_at_round_0_with_integer_ticks_and_markers(tmp_path: Path) -> None:
    fig = accuracy_figure(_report(tmp_path))
    try:
        ax = fig.axes[0]
        lines = {str(line.get_label()): line for line in ax.get_lines()}
        global_line = lines["global student (test split)"]
        assert np.asarray(global_line.get_xdata()).tolist() == [0, 1, 2, 3]
        ys = np.asarray(global_line.get_ydata(), dtype=float)
        assert ys.tolist() == pytest.approx([0.80, 0.82, 0.84, 0.85])
        # satellite has a single point (round 2): it shows only with a marker
        satellite = np.asarray(lines["satellite clients (own held-out split)"].get_ydata())
        assert satellite[~np.isnan(satellite)].tolist() == [0.66]
        for label, line in lines.items():
            if not label.startswith("teacher"):
                assert line.get_marker() not in (None, "None", "", " "), label
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        low, high = ax.get_ylim()
        assert 0.55 < low < 0.66 and 0.878 < high < 0.95  # fitted, not 0-1
    finally:
        plt.close(fig)


def test_plot_accuracy_writes_a_png(tmp_path: Path) -> None:
    path = plot_accuracy(_report(tmp_path), tmp_path / "out" / "accuracy.png")
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_a_report_without_rounds_or_values_still_plots(tmp_path: Path) -> None:
    history = History(config={}, out_dir=None)  # start and teacher NaN: null in the report
    report = finite_json(history.to_dict())
    assert plot_accuracy(report, tmp_path / "a.png").stat().st_size > 1000
    history.start_accuracy = 0.5
    one = finite_json(history.to_dict())
    assert plot_accuracy(one, tmp_path / "b.png").stat().st_size > 1000


def test_refined_teacher_is_drawn_per_round(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report["rounds"][1]["teacher_accuracy"] = 0.9
    fig = accuracy_figure(report)
    try:
        labels = [line.get_label() for line in fig.axes[0].get_lines()]
        assert "refined teacher" in labels
        assert fig.axes[0].get_ylim()[1] > 0.9
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    ("values", "inside"),
    [([0.88], (0.88, 0.88)), ([0.0, 0.02], (0.0, 0.02)), ([0.3, 1.0], (0.3, 1.0))],
)
def test_y_limits_fit_the_data_with_a_margin(
    values: list[float], inside: tuple[float, float]
) -> None:
    low, high = y_limits(values)
    assert low < inside[0] and high > inside[1]  # a point at 0 or 1 is not cut by the frame
    assert high - low >= MIN_SPAN
    assert high - low < max(values) - min(values) + 0.2
