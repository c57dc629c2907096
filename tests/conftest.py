"""Shared fixtures: tiny generated EuroSAT-like folders and an isolated cache."""

from __future__ import annotations

import os

# Before torch (and its OpenMP runtime) loads, here and in every process a test starts: idle
# OpenMP threads sleep instead of spinning. On this 2-core machine, shared with other work and
# with a second pytest worker, spinning threads made a tiny model's training 10x slower
# (70 s instead of 7 s, measured); sleeping threads change no result, only the waiting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.data.eurosat.make import make
from tests.shared_cache import session_cache

# One torch thread in the test process (and in each pytest-xdist worker): the suite's models
# are tiny, two workers share two cores, and a test that needs more threads sets them itself
# (the autouse fixture below puts the count back after it).
torch.set_num_threads(1)

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
    monkeypatch.setenv("SKYDISTILL_CACHE", str(session_cache(tmp_path_factory)))


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Every test starts with the process's torch thread count: the commands a test runs
    in-process (export, predict) set it for their process, and training differs with it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# The integration test files that cost the most, heaviest first, as measured on a fresh clone
# of this 2-core machine (`make test`'s `--durations`, 2026-12-03: bench distill 347 s,
# resilience 345 s, resume 296 s, agents 163 s, bench robust 131 s; every other file under
# 70 s). `make test` runs the integration tests a file per worker in this order
# (`--no-loadscope-reorder`), so the long files start first and the short ones fill in
# behind them, instead of a long file starting last and running alone at the end.
HEAVY_FIRST = (
    "tests/simulations/bench/test_distill.py",
    "tests/deploy/test_resilience.py",
    "tests/simulations/test_resume.py",
    "tests/deploy/test_agents.py",
    "tests/simulations/bench/test_robust.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the items of :data:`HEAVY_FIRST` first, in its order; the rest keep theirs."""
    rank = {path: i for i, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
