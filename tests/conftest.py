"""Shared fixtures: tiny generated EuroSAT-like folders and an isolated cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.data.eurosat.make import make

# Fixtures that several test folders share: the on-board tests' trained student (a session
# fixture) and the fetch tests' archives and HTTP server.
pytest_plugins = ["tests.student_fixture", "tests.fetch_server"]


@pytest.fixture(scope="session")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with ``eurosat-rgb`` and ``eurosat-ms`` fixture folders (12 tiles/class)."""
    return make(tmp_path_factory.mktemp("data"), per_class=12, seed=0)


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYDISTILL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Every test starts with the process's torch thread count: the commands a test runs
    in-process (export, predict) set it for their process, and training differs with it."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
