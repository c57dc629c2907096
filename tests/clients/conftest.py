"""Every client test starts with a process that keeps nothing (clients/resident.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clients import resident


@pytest.fixture(autouse=True)
def _nothing_resident() -> Iterator[None]:
    resident.forget()
    yield
    resident.forget()
