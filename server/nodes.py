"""Check that a simulated federation has one SuperNode per client shard.

On Flower's simulation engine SuperNode ``i`` gets ``partition-id = i``, and the ClientApp
trains on shard ``i`` of the ``num-clients`` shards. ``flwr run .`` takes the number of
SuperNodes from ``--federation-config "num-supernodes=N"`` (or Flower's default), not from
``num-clients``, so the two can differ without a word: fewer nodes leave shards unused, more
nodes have no shard to train on. Agents (deployment) bring their own data and are not checked.
"""

from __future__ import annotations

import logging
import time

from flwr.serverapp import Grid
from flwr.superlink.grid import InMemoryGrid

log = logging.getLogger(__name__)


def _shards(first: int, last: int) -> str:
    """``the shard of client 2 is`` or ``the shards of clients 2-19 are``."""
    if first == last:
        return f"the shard of client {first} is"
    return f"the shards of clients {first}-{last} are"


def _nodes(first: int, last: int) -> str:
    """``the SuperNode with partition-id 3 has no shard, and fails every round it is``..."""
    if first == last:
        return f"the SuperNode with partition-id {first} has no shard, and fails every round it is"
    return (
        f"the SuperNodes with partition-id {first}-{last} have no shard, and fail every round "
        "they are"
    )


def node_count_message(nodes: int, num_clients: int) -> str | None:
    """What is wrong with ``nodes`` simulated SuperNodes for ``num_clients`` shards (None: ok)."""
    if nodes == num_clients:
        return None
    head = f"{nodes} simulated SuperNodes for num-clients = {num_clients}"
    fix = (
        f'run with --federation-config "num-supernodes={num_clients}" (equal to num-clients), '
        f"or set num-clients = {nodes}"
    )
    if nodes < num_clients:
        return (
            f"{head}: only {_shards(0, nodes - 1)} trained on; {_shards(nodes, num_clients - 1)} "
            f"never used ({num_clients - nodes} of {num_clients}); {fix}"
        )
    return f"{head}: {_nodes(num_clients, nodes - 1)} selected in; {fix}"


def check_simulated_nodes(
    grid: Grid, num_clients: int, *, wait: float = 10.0, poll: float = 0.5
) -> int | None:
    """On the simulation engine, log a WARNING if the SuperNodes do not match ``num_clients``.

    Flower registers every simulated SuperNode at once when the simulation starts, so this
    waits (up to ``wait`` seconds) only until the count is there and stops changing. Returns
    the number of nodes seen, or None outside a simulation."""
    if not isinstance(grid, InMemoryGrid):
        return None
    deadline = time.monotonic() + wait
    seen = -1
    while (nodes := len(list(grid.get_node_ids()))) < num_clients and time.monotonic() < deadline:
        if nodes == seen and nodes > 0:
            break  # registration is over: this is the federation's size
        seen = nodes
        time.sleep(poll)
    message = node_count_message(nodes, num_clients)
    if message is not None:
        log.warning(message)
    return nodes
