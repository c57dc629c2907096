"""What the strategy tests share: Flower's task identity, set as a running ServerApp has it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flwr.supercore.task_identity import TaskIdentity


@pytest.fixture(autouse=True, scope="module")  # module: hypothesis tests use it too
def _task_identity() -> Iterator[None]:
    """Messages built outside a ServerApp need a run, node and task id."""
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    yield
