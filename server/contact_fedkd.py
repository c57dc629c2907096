"""FedKD on a fleet scenario's round schedule: who may talk when, and replies that arrive late.

A scenario (``scenario`` in the run config) gives each client contact windows with the ground
(orbits, drone flights). Each round the schedule plans which clients can be reached and when
the round's window ends on the simulated clock; a reply that misses its round's window is held
and delivered in a later contact, down-weighted by its staleness or dropped as too old.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from flwr.serverapp import Grid

from common.fleet.schedule import RoundPlan, Schedule
from server.aggregation import Groups
from server.history import RoundRecord
from server.knowledge import Knowledge
from server.replies import ClientReply
from server.strategy import FedKD

log = logging.getLogger(__name__)

MAX_STALENESS = 100  # rounds of reference indices kept for replies that arrive late


class ContactFedKD(FedKD):
    """FedKD whose rounds follow a fleet scenario's schedule (contact-aware or synchronous).

    It overrides only the hooks the schedule changes: the nodes of a round are the planned
    clients' (not a sample), each round ends at the plan's simulated hour, replies are settled
    by the schedule (fresh, held for later, stale at a decayed weight, or too old), and the
    server's models train only after rounds whose knowledge arrived.

    Parameters
    ----------
    knowledge : Knowledge
        As for :class:`FedKD`.
    schedule : Schedule[ClientReply]
        The scenario's round schedule (server/fleet.py ``build_schedule``): it plans each
        round's clients from their contact windows and settles their replies. Nodes map to
        its clients through :meth:`FedKD.use_directory`, which must be called before round 1.
    **options
        Every other parameter of :class:`FedKD`, with its defaults (the node sampling ones,
        ``fraction_train``, ``min_train_nodes``, ``min_available_nodes`` and
        ``sample_by_client``, are not used: the schedule picks the clients).
    """

    def __init__(
        self, knowledge: Knowledge, *, schedule: Schedule[ClientReply], **options: Any
    ) -> None:
        super().__init__(knowledge, **options)
        self.schedule = schedule

    def _select(self, server_round: int, grid: Grid) -> tuple[list[int], float | None]:
        """The nodes of the clients the schedule plans for ``server_round``, and the simulated
        hours when its window ends."""
        plan = self._plan(server_round)
        return self._nodes_of(plan), plan.end

    def _issue(self, server_round: int, indices: np.ndarray) -> None:
        """Keep the indices of earlier rounds too: a held reply answers the round that asked."""
        self._issued[server_round] = indices

    def _group(
        self, server_round: int, record: RoundRecord, valid: list[ClientReply], senders: list[int]
    ) -> Groups:
        return self._settle(server_round, record, dict(zip(senders, valid, strict=True)))

    def _server_update_due(self) -> bool:
        """Only when knowledge arrived: in a window where nobody's did, the global student and
        the teacher stay as they were."""
        return self.updated

    def _plan(self, server_round: int) -> RoundPlan:
        if not self.node_clients:
            raise RuntimeError("FedKD has a schedule but no node -> client map: discover first")
        return self.schedule.plan_round(server_round)

    def _nodes_of(self, plan: RoundPlan) -> list[int]:
        """The Flower nodes of the plan's scenario clients (sorted)."""
        by_client = {c: n for n, c in self.node_clients.items()}
        missing = [c for c in plan.clients if c not in by_client]
        if missing:
            log.warning("round %d: scenario clients %s have no node", plan.round, missing)
        return sorted(by_client[c] for c in plan.clients if c in by_client)

    def _settle(
        self, server_round: int, record: RoundRecord, replies: dict[int, ClientReply]
    ) -> Groups:
        """This round's fresh replies and the held ones delivered now, grouped by the round
        that issued them, with their staleness weights."""
        by_client = {self.node_clients[n]: r for n, r in replies.items() if n in self.node_clients}
        settled = self.schedule.settle(server_round, by_client)
        record.replies_held = settled.held
        record.stale_accepted = len(settled.stale)
        record.stale_dropped = settled.dropped
        groups: Groups = {server_round: (settled.fresh, [1.0] * len(settled.fresh))}
        for reply, issued, _, weight in settled.stale:
            group = groups.setdefault(issued, ([], []))
            group[0].append(reply)
            group[1].append(weight)
        self._issued = {r: i for r, i in self._issued.items() if r > server_round - MAX_STALENESS}
        if settled.stale or settled.dropped or settled.held:
            log.info(
                "round %d: %d fresh, %d stale accepted, %d too old, %d held for later",
                server_round,
                len(settled.fresh),
                len(settled.stale),
                settled.dropped,
                settled.held,
            )
        return groups
