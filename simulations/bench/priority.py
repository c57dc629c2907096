"""Let the virtual clients have the CPU before Flower's own processes (bench scale).

Flower 1.42's simulation engine delivers messages by polling: every 0.1 s it asks the link
state for a message for each registered node, and each ask scans every message in flight
(``vce_api.add_messages_to_queue``, ``InMemoryLinkState.get_message_ins``). Measured on this
machine (``docs/scale.md``): one pass over 10,000 nodes with 100 messages in flight costs
3.2 CPU seconds, 0.33 s over 1,000 nodes, and it repeats all round long, although every message
is delivered by the first pass. No Flower setting changes that interval or the scan.

The passes that follow the first find nothing, so they need no CPU that a client wants. Once
Ray's raylet runs (it, and the actors it starts, keep their own priority), this module sets
every thread of Flower's processes (SuperLink, SuperExec and ``flwr-simulation``, which holds
the ServerApp and the engine) to a higher niceness: they then run on the CPU the actors leave
idle, which is all of it between the clients' phases. Raising one's own niceness needs no
privilege; threads started later inherit it from the thread that starts them.
"""

from __future__ import annotations

import contextlib
import logging
import os

from simulations.bench.tree import FLOWER, RAYLET, TreeWatcher, command_base, process_tree

log = logging.getLogger(__name__)


def renice_threads(pid: int, niceness: int) -> int:
    """Set every thread of ``pid`` to at least ``niceness``; returns how many changed."""
    changed = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                if os.getpriority(os.PRIO_PROCESS, int(tid)) < niceness:
                    os.setpriority(os.PRIO_PROCESS, int(tid), niceness)
                    changed += 1
    return changed


class FlowerBelowClients(TreeWatcher):
    """Context manager: while open, every ``interval`` s, once a raylet runs under
    ``root_pid``, raise Flower's processes in that tree to ``niceness`` (0: do nothing)."""

    def __init__(self, root_pid: int, niceness: int, interval: float = 0.5) -> None:
        super().__init__(root_pid, interval, "flower-below-clients", active=niceness > 0)
        self.niceness = niceness
        self.reniced: set[int] = set()

    def tick(self) -> None:
        self.apply()

    def apply(self) -> None:
        commands = {
            proc.pid: command_base(proc, (*FLOWER, RAYLET)) or ""
            for proc in process_tree(self.root_pid)
        }
        if RAYLET not in commands.values():
            return  # Ray not started yet: its raylet would inherit the niceness
        for pid, command in commands.items():
            if command.startswith(FLOWER) and renice_threads(pid, self.niceness):
                if pid not in self.reniced:
                    log.info("%s (pid %d) now runs at nice %d", command, pid, self.niceness)
                self.reniced.add(pid)
