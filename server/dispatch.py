"""A round's messages sent in a sliding window: at most ``max-in-flight`` unanswered at once.

Flower 1.42's simulation engine asks its link state for a message for every registered node
every 0.1 s, and each ask scans every message in flight (``vce_api.add_messages_to_queue``,
``InMemoryLinkState.get_message_ins``): a pass costs O(registered nodes x messages in
flight), in the process that also runs the ServerApp and drives Ray. Measured with Flower's
own classes at 10,000 registered nodes (docs/scale.md, "Where Flower + Ray's overhead
goes"): 0.04 CPU-s a pass with nothing in flight, 0.26 with 4, 5.2 with 100. A round sent
all at once keeps that process busy for the whole round; a window of a few messages per
actor keeps the actors fed and the scans short.

The window is a :class:`Grid` around Flower's: everything but ``send_and_receive`` is
Flower's own, and ``send_and_receive`` keeps its contract (the replies that arrived before
``timeout``, in arrival order). A message the window had not sent yet when the timeout came
is never sent: it gets no reply, like a node that did not answer.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

log = logging.getLogger(__name__)

PULL_INTERVAL = 0.05  # seconds between two pulls while the window is full


class WindowedGrid(Grid):
    """``grid`` with at most ``max_in_flight`` messages unanswered (0: all at once, Flower's
    own ``send_and_receive``)."""

    def __init__(self, grid: Grid, max_in_flight: int, pull_interval: float = PULL_INTERVAL):
        if max_in_flight < 0:
            raise ValueError(f"max_in_flight must be >= 0, got {max_in_flight}")
        self.inner = grid
        self.max_in_flight = max_in_flight
        self.pull_interval = pull_interval

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(  # deprecated in Flower; kept for its contract
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        if self.max_in_flight == 0:
            return self.inner.send_and_receive(messages, timeout=timeout)
        waiting = deque(messages)
        total = len(waiting)
        deadline = None if timeout is None else time.monotonic() + timeout
        in_flight: set[str] = set()
        replies: list[Message] = []
        while waiting or in_flight:
            room = self.max_in_flight - len(in_flight)
            if waiting and room > 0:
                batch = [waiting.popleft() for _ in range(min(room, len(waiting)))]
                in_flight.update(self.inner.push_messages(batch))
            arrived = list(self.inner.pull_messages(in_flight)) if in_flight else []
            replies.extend(arrived)
            in_flight.difference_update(m.metadata.reply_to_message_id for m in arrived)
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not arrived:
                time.sleep(self.pull_interval)
        if waiting or in_flight:
            log.warning(
                "round timeout after %.0f s: %d of %d messages answered, %d unanswered, "
                "%d never sent (max-in-flight %d)",
                timeout or 0.0,
                len(replies),
                total,
                len(in_flight),
                len(waiting),
                self.max_in_flight,
            )
        return replies
