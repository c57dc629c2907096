"""The one ``SKYDISTILL_CACHE`` of a test session, shared by its pytest-xdist workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def session_cache(factory: pytest.TempPathFactory) -> Path:
    """``<session temp>/cache``: under pytest-xdist each worker's temp folder sits in the
    session's, so the workers share decoded tiles and trained ground models (their files are
    written atomically and keyed by everything that shapes them, as in any shared cache)."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / "cache"
