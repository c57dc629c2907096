"""The few environment settings skydistill reads, resolved in one place."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The real data folder: ``override``, else ``SKYDISTILL_DATA``, else ``../shared/data``."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("SKYDISTILL_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return (PROJECT_ROOT.parent / "shared" / "data").resolve()


def cache_dir() -> Path:
    """Decoded arrays and trained teachers: ``SKYDISTILL_CACHE`` or ``~/.cache/skydistill``."""
    env = os.environ.get("SKYDISTILL_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "skydistill"
    path.mkdir(parents=True, exist_ok=True)
    return path
