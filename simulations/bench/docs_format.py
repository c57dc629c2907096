"""Formatting of the numbers on ``docs/benchmarks.md``: percentages, bytes, hours, figures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def signed_points(x: float | None) -> str:
    return "" if x is None else f"{100 * x:+.1f}"


def cost(m: dict[str, Any]) -> str:
    steps, seconds = m.get("client_steps_per_round"), m.get("client_seconds_per_round")
    if steps is None or seconds is None:
        return ""
    return f"{steps:,.0f} / {seconds:.2f} s"


def byte_size(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f} MB"
    if x >= 1e3:
        return f"{x / 1e3:.1f} kB"
    return f"{x:.0f} B"


def figure(src: Path, img: Path, docs_dir: Path, alt: str) -> list[str]:
    """Copy the plot ``src`` (if there is one) beside the page and link it."""
    if not src.is_file():
        return []
    img.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, img / src.name)
    return ["", f"![{alt}]({os.path.relpath(img / src.name, docs_dir)})"]


def format_hours(h: float | None) -> str:
    """Simulated hours to a target, or that it was not reached."""
    return "not reached" if h is None else f"{h:.1f} h"
