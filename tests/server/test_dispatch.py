"""A round's messages in a sliding window (server/dispatch.py) on Flower's real in-memory
grid and link state, with a thread in the engine's place that answers what it is given."""

from __future__ import annotations

import threading
import time
from typing import cast
from uuid import uuid4

import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.grid import InMemoryGrid

from server.dispatch import WindowedGrid
from tests.server.loopback import simulation_grid


class Engine(threading.Thread):
    """Polls the link state for every node's message like Flower's simulation engine and
    answers each after ``delay`` seconds; remembers the most messages unanswered at once."""

    def __init__(self, grid: InMemoryGrid, delay: float, silent: frozenset[int] = frozenset()):
        super().__init__(daemon=True)
        self.state = cast(InMemoryLinkState, grid.state)  # the scans' own store
        self.delay, self.silent = delay, silent
        self.nodes = sorted(grid.get_node_ids())
        self.stop = threading.Event()
        self.most_in_flight = 0
        self.answered = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.most_in_flight = max(self.most_in_flight, len(self.state.message_ins_store))
            for node in self.nodes:
                for message in self.state.get_message_ins(node_id=node, limit=1):
                    if node in self.silent:
                        continue
                    time.sleep(self.delay)
                    reply = Message(RecordDict({"r": ConfigRecord({"n": node})}), reply_to=message)
                    reply.metadata.__dict__["_message_id"] = str(uuid4())  # as vce_api does
                    assert self.state.store_message_res(reply) is not None
                    self.answered += 1
            self.stop.wait(0.01)


def train_messages(nodes: list[int]) -> list[Message]:
    return [
        Message(RecordDict({"c": ConfigRecord({})}), dst_node_id=n, message_type="train")
        for n in nodes
    ]


@pytest.fixture
def grid() -> InMemoryGrid:
    """12 registered nodes; messages carry the grid's run (7) as in a running ServerApp."""
    g = simulation_grid(12)
    TaskIdentity.run_id, TaskIdentity.task_id = g.run.run_id, g.run.primary_task_id or 0
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    return g


def run_round(grid: InMemoryGrid, window: int, engine: Engine, timeout: float) -> list[Message]:
    engine.start()
    try:
        nodes = sorted(grid.get_node_ids())
        return list(
            WindowedGrid(grid, window, pull_interval=0.01).send_and_receive(
                train_messages(nodes), timeout=timeout
            )
        )
    finally:
        engine.stop.set()
        engine.join()


def test_every_message_is_answered_with_at_most_the_window_in_flight(grid: InMemoryGrid) -> None:
    engine = Engine(grid, delay=0.005)
    replies = run_round(grid, 3, engine, timeout=30.0)
    assert sorted(r.metadata.src_node_id for r in replies) == sorted(grid.get_node_ids())
    assert 1 <= engine.most_in_flight <= 3
    assert not cast(
        InMemoryLinkState, grid.state
    ).message_ins_store  # every answered message was pulled and deleted


def test_window_zero_is_flowers_own_send_and_receive(grid: InMemoryGrid) -> None:
    engine = Engine(grid, delay=0.0)
    replies = run_round(grid, 0, engine, timeout=30.0)
    assert len(replies) == 12
    assert engine.most_in_flight == 12  # all pushed at once


def test_a_silent_node_costs_its_slot_until_the_timeout_and_unsent_messages_never_go(
    grid: InMemoryGrid, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = sorted(grid.get_node_ids())
    engine = Engine(grid, delay=0.0, silent=frozenset(nodes[:2]))  # the first two never answer
    started = time.monotonic()
    replies = run_round(grid, 2, engine, timeout=1.0)
    assert 1.0 <= time.monotonic() - started < 10.0
    assert replies == []  # both slots held by silent nodes: nothing else was sent
    assert engine.answered == 0
    assert "2 unanswered, 10 never sent (max-in-flight 2)" in caplog.text


def test_a_negative_window_is_refused(grid: InMemoryGrid) -> None:
    with pytest.raises(ValueError, match="max_in_flight must be >= 0"):
        WindowedGrid(grid, -1)
