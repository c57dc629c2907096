"""Writing a benchmark's JSON report: one write for every bench, and the merge of the reports
that keep earlier runs (``distill.json``: one run per settings; ``scale.json``: per size)."""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write
from server.history import finite_json

log = logging.getLogger(__name__)

Run = dict[str, Any]


def cpu_model() -> str:
    """This machine's CPU model (Linux's /proc/cpuinfo ``model name``; elsewhere what
    :mod:`platform` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def write_report(path: Path, report: Any) -> Path:
    """``report`` as indented JSON in ``path`` (folders created, non-finite numbers as null,
    which JSON lacks), written so that a reader sees the old file or the new one."""
    text = json.dumps(finite_json(report), indent=2).encode()
    return atomic_write(path, lambda fh: fh.write(text))


def earlier_runs(path: Path) -> list[Run]:
    """The ``runs`` of the report in ``path``; none if there is no report or it is unreadable."""
    if not path.is_file():
        return []
    try:
        runs = json.loads(path.read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s is unreadable: starting a new report", path)
        return []
    if not isinstance(runs, list):
        log.warning("%s holds no list of runs: starting a new report", path)
        return []
    return [r for r in runs if isinstance(r, dict)]


def merged_runs(
    path: Path,
    new: Sequence[Run],
    *,
    same: Callable[[Run], object],
    order: Callable[[Run], Any],
) -> list[Run]:
    """The runs of the report in ``path`` with ``new`` in place of every earlier run of the
    same settings (``same(run)`` equal), sorted by ``order`` (ties keep their places)."""
    replaced = [same(r) for r in new]
    kept = [r for r in earlier_runs(path) if same(r) not in replaced]
    return sorted([*kept, *new], key=order)
