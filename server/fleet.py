"""Fleet scenarios in the ServerApp: build the round schedule, learn which node is which client.

Flower gives simulated nodes random ids; each node's partition id (= scenario client) is
known only to the node, so before round 1 the server asks every node once (a QUERY message
answered by the ClientApp with its partition id and role).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from common import keys
from common.bands import DATASETS
from common.codec import encode, payload_bytes
from common.config import RunConfig
from common.errors import ConfigError
from common.fleet.schedule import ContactAwareSchedule, Schedule, SynchronousSchedule
from server.replies import ClientReply

log = logging.getLogger(__name__)


def bytes_per_tile(cfg: RunConfig) -> int:
    """Bytes of one reference tile's soft labels on the wire, down and up: what the run's
    codec makes of one row of its dataset's classes (int8 on 10 classes: 10 bytes and a
    4-byte scale each way)."""
    num_classes = len(DATASETS[cfg.dataset].classes)
    row = np.full((1, num_classes), 1.0 / num_classes, dtype=np.float32)
    return 2 * payload_bytes(encode(row, cfg.codec_mode, k=cfg.topk))


def build_schedule(cfg: RunConfig) -> Schedule[ClientReply]:
    """The schedule of ``cfg.scenario`` (imports the orbit code only when a scenario is set)."""
    from common.fleet.contacts import contact_plan
    from common.fleet.scenario import load_scenario

    scenario = load_scenario(cfg.scenario)
    if scenario.num_clients != cfg.num_clients:
        raise ConfigError(
            f"scenario {scenario.name!r} has {scenario.num_clients} clients but num-clients = "
            f"{cfg.num_clients}: set num-clients = {scenario.num_clients}"
        )
    if cfg.resume:
        raise ConfigError("resume with a scenario is not supported: the schedule starts over")
    plan = contact_plan(scenario, payload_bytes=cfg.reference_per_round * bytes_per_tile(cfg))
    per_round = max(cfg.min_train_clients, int(cfg.num_clients * cfg.fraction_train))
    train_hours = scenario.train_minutes / 60.0
    log.info(
        "scenario %s: %d clients, %s schedule, %d clients per round at most",
        scenario.name,
        scenario.num_clients,
        cfg.schedule,
        per_round,
    )
    if cfg.schedule == "synchronous":
        return SynchronousSchedule(
            plan, max_clients=per_round, train_hours=train_hours, seed=cfg.seed
        )
    return ContactAwareSchedule(
        plan,
        window_hours=cfg.round_window_minutes / 60.0,
        max_clients=per_round,
        max_staleness=cfg.max_staleness,
        decay=cfg.staleness_decay,
        train_hours=train_hours,
        seed=cfg.seed,
    )


@dataclass(frozen=True)
class Directory:
    """Who each connected node is: its partition id (= scenario client) and its role."""

    clients: dict[int, int]  # node id -> partition id
    roles: dict[int, str]  # node id -> role


def discover_clients(
    grid: Grid, expected: int, *, timeout: float = 600.0, wait: float = 300.0
) -> Directory:
    """Every connected node's partition id and role (asks each node once)."""
    deadline = time.monotonic() + wait
    while len(nodes := sorted(grid.get_node_ids())) < expected and time.monotonic() < deadline:
        time.sleep(1.0)
    content = RecordDict({keys.TRAIN_CONFIG: ConfigRecord({})})
    messages = [Message(content, dst_node_id=n, message_type=MessageType.QUERY) for n in nodes]
    found: dict[int, int] = {}
    roles: dict[int, str] = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        info = None if reply.has_error() else reply.content.get(keys.INFO)
        if not isinstance(info, ConfigRecord):
            continue
        pid, role = info.get(keys.PARTITION_ID), info.get(keys.ROLE)
        if isinstance(pid, int):
            found[reply.metadata.src_node_id] = pid
        if isinstance(role, str):
            roles[reply.metadata.src_node_id] = role
    log.info("discovered %d of %d nodes' scenario clients", len(found), len(nodes))
    if len(found) < expected:
        log.warning("only %d of %d nodes answered: the others get no work", len(found), expected)
    return Directory(found, roles)
