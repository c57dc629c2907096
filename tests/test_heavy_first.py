"""The integration files that ``tests/conftest.py`` schedules first exist and are integration
tests: a renamed or moved file would otherwise fall back silently to the end of the queue."""

from __future__ import annotations

from common.settings import PROJECT_ROOT
from tests.conftest import HEAVY_FIRST


def test_every_heavy_file_exists_and_holds_integration_tests() -> None:
    assert len(set(HEAVY_FIRST)) == len(HEAVY_FIRST)
    for path in HEAVY_FIRST:
        assert "pytest.mark.integration" in (PROJECT_ROOT / path).read_text(), path
