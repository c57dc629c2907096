"""A benchmark's run config shrunk to the fixture data, for the benches' integration tests."""

from __future__ import annotations

from pathlib import Path

from common.config import RunConfig

# One epoch per ground model and a handful of reference tiles: seconds, not minutes.
SHRINK = {
    "teacher-epochs": 1,
    "preinstall-epochs": 1,
    "global-pretrain-epochs": 1,
    "reference-per-round": 6,
    "fraction-train": 0.5,
}


def on_fixture_data(base: RunConfig, fixture_data: Path) -> RunConfig:
    """``base`` on the fixture folder with :data:`SHRINK` on top."""
    return RunConfig.from_mapping({**base.to_mapping(), "data-dir": str(fixture_data), **SHRINK})
