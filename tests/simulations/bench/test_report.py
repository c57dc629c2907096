"""The one report write of every bench, and the merge of the reports that keep earlier runs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from simulations.bench.report import earlier_runs, merged_runs, write_report


def test_a_report_is_indented_json_with_null_for_non_finite_numbers(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "bench.json"
    report = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": 0.5}, "e": (1, 2)}
    assert write_report(path, report) == path
    text = path.read_text()
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": {"d": 0.5}, "e": [1, 2]}
    assert text.startswith('{\n  "a": null')  # indented by two, as the reports always were
    assert "NaN" not in text and "Infinity" not in text
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]  # no temp file left


def test_a_report_replaces_the_old_one_whole(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    write_report(path, {"runs": [1, 2, 3], "old": True})
    write_report(path, {"runs": [4]})
    assert json.loads(path.read_text()) == {"runs": [4]}


def _key(run: dict[str, object]) -> object:
    return run.get("size")


def _order(run: dict[str, object]) -> int:
    return int(str(run["size"]))


def test_new_runs_replace_the_runs_of_the_same_settings_and_keep_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bench.json"
    old = [{"size": 4, "v": "old"}, {"size": 3, "v": "old"}, {"size": 1, "v": "old"}]
    write_report(path, {"runs": old})
    runs = merged_runs(
        path, [{"size": 2, "v": "new"}, {"size": 3, "v": "new"}], same=_key, order=_order
    )
    assert [(r["size"], r["v"]) for r in runs] == [(1, "old"), (2, "new"), (3, "new"), (4, "old")]


def test_runs_that_sort_alike_keep_their_places(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    write_report(path, {"runs": [{"size": 1, "n": 1}, {"size": 2, "n": 2}]})
    runs = merged_runs(path, [{"size": 3, "n": 3}], same=_key, order=lambda r: 0)
    assert [r["n"] for r in runs] == [1, 2, 3]  # earlier runs first, then the new ones


def test_no_report_yet_means_no_earlier_runs(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    assert earlier_runs(path) == []
    assert merged_runs(path, [{"size": 5}], same=_key, order=_order) == [{"size": 5}]


@pytest.mark.parametrize(
    "text", ["{not json", '{"no": "runs"}', '{"runs": {"size": 1}}', "[1, 2]", '"runs"']
)
def test_an_unreadable_report_starts_a_new_one_with_a_warning(
    text: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bench.json"
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="simulations.bench.report"):
        assert earlier_runs(path) == []
    assert "starting a new report" in caplog.text


def test_entries_that_are_not_runs_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"runs": [{"size": 1}, "junk", 3, None, {"size": 2}]}))
    assert earlier_runs(path) == [{"size": 1}, {"size": 2}]
