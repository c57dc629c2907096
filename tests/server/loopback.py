"""Grids for the server tests: just enough of one for a strategy's configure_train (the
connected node ids), and Flower's real in-memory grid as its simulation engine builds it."""

from __future__ import annotations

from dataclasses import replace

from flwr.proto.task_pb2 import Task
from flwr.server.superlink.fleet.vce.vce_api import _register_nodes
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.server.superlink.linkstate.in_memory_linkstate import RunRecord
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME, NOOP_FEDERATION_ID
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.run import Run
from flwr.superlink.federation import NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid


class LoopbackGrid:
    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return self.nodes


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
