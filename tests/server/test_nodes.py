"""A simulation whose SuperNodes do not match num-clients says so once, with the fix."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from flwr.proto.task_pb2 import Task
from flwr.server.superlink.fleet.vce.vce_api import _register_nodes
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.server.superlink.linkstate.in_memory_linkstate import RunRecord
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME, NOOP_FEDERATION_ID
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.run import Run
from flwr.superlink.federation import NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid

from server.nodes import check_simulated_nodes, node_count_message


def simulation_grid(num_supernodes: int) -> InMemoryGrid:
    """The grid a ServerApp gets on Flower's simulation engine, with ``num_supernodes``
    registered the way the engine registers them (flwr.simulation.run_simulation)."""
    factory = LinkStateFactory(
        FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory()
    )
    state = factory.state()
    run = replace(Run.create_empty(run_id=7), primary_task_id=11, federation_id=NOOP_FEDERATION_ID)
    state.run_ids[7] = RunRecord(run=run)  # type: ignore[attr-defined]
    state.task_store[11] = Task(task_id=11, run_id=7)  # type: ignore[attr-defined]
    grid = InMemoryGrid(state_factory=factory)
    grid.set_run(run)
    _register_nodes(num_supernodes, factory)
    return grid


def test_matching_counts_are_fine() -> None:
    assert node_count_message(20, 20) is None


def test_fewer_nodes_name_the_unused_shards_and_the_fix() -> None:
    text = node_count_message(2, 20)
    assert text is not None
    assert "the shards of clients 0-1 are trained on" in text
    assert "the shards of clients 2-19 are never used (18 of 20)" in text
    assert '--federation-config "num-supernodes=20"' in text


def test_more_nodes_name_the_nodes_without_a_shard() -> None:
    text = node_count_message(5, 3)
    assert text is not None
    assert "SuperNodes with partition-id 3-4 have no shard" in text
    assert '"num-supernodes=3"' in text


def test_a_real_simulation_grid_with_too_few_nodes_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    grid = simulation_grid(2)
    with caplog.at_level(logging.WARNING, logger="server.nodes"):
        assert check_simulated_nodes(grid, 4, wait=5.0, poll=0.05) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "the shards of clients 2-3 are never used (2 of 4)" in warnings[0].getMessage()


def test_a_real_simulation_grid_of_the_right_size_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="server.nodes"):
        assert check_simulated_nodes(simulation_grid(3), 3) == 3
    assert not [r for r in caplog.records if r.name == "server.nodes"]
