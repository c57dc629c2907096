"""Which nodes a round trains: wait for enough connected nodes, then a seeded sample."""

from __future__ import annotations

import logging
import random
import time

from flwr.serverapp import Grid

log = logging.getLogger(__name__)


def wait_for_nodes(grid: Grid, minimum: int, seconds: float) -> list[int]:
    """The connected node ids (sorted) once at least ``minimum`` are connected, or whoever
    is after ``seconds`` (logged)."""
    deadline = time.monotonic() + seconds
    while len(nodes := sorted(grid.get_node_ids())) < minimum:
        if time.monotonic() > deadline:
            log.warning("only %d nodes connected after waiting: continuing", len(nodes))
            break
        log.info("waiting for nodes: %d of %d connected", len(nodes), minimum)
        time.sleep(1.0)
    return nodes


def sample_nodes(
    rng: random.Random, nodes: list[int], size: int, node_clients: dict[int, int] | None = None
) -> list[int]:
    """``size`` of ``nodes`` drawn with ``rng`` (sorted). With ``node_clients`` (node id ->
    partition id) the draw is over the clients behind the nodes, not the node ids: Flower
    draws new node ids each run, so only this makes two runs with one seed train the same
    clients."""
    if node_clients:
        live = set(nodes)
        pairs = sorted((c, n) for n, c in node_clients.items() if n in live)
        picked = rng.sample(pairs, min(size, len(pairs)))
        return sorted(n for _, n in picked)
    return sorted(rng.sample(nodes, size))
