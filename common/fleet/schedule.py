"""Who gets work in which round, on a simulated clock of contact windows (no Flower here).

Two schedules share one interface, ``plan_round`` then ``settle``:

- :class:`ContactAwareSchedule`: round ``r`` is the window ``[(r-1) W, r W)`` of simulated
  hours. Idle clients in contact during it receive work; a client replies at its first contact
  after ``train`` hours (the same contact if it lasts long enough). A reply that lands in a
  later round is held and delivered then: accepted with weight ``decay ** age`` if its age in
  rounds is at most ``max_staleness``, otherwise dropped and counted.
- :class:`SynchronousSchedule`: sample clients; the round lasts until every sampled client has
  had a contact to receive its work and one to return its reply.

Contacts are usable only if long enough to move the round's payload over the client's link.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
ALWAYS = ((0.0, math.inf),)  # a ground station: always in contact


class ContactPlan:
    """Each client's contact windows, ``(start, end)`` in simulated hours, sorted."""

    def __init__(
        self,
        windows: Sequence[Sequence[tuple[float, float]]],
        transfer_hours: Sequence[float] | None = None,
    ) -> None:
        self.windows = [sorted(w) for w in windows]
        self._ends = [[e for _, e in w] for w in self.windows]
        self.transfer = list(transfer_hours or [0.0] * len(self.windows))
        if len(self.transfer) != len(self.windows):
            raise ValueError("transfer_hours needs one value per client")

    @property
    def num_clients(self) -> int:
        return len(self.windows)

    def next_contact(self, client: int, t: float, before: float = math.inf) -> float | None:
        """The first time ``>= t`` (and ``< before``) at which ``client`` is in a contact with
        enough time left to move its payload, or None."""
        need = self.transfer[client]
        windows = self.windows[client]
        for i in range(bisect.bisect_right(self._ends[client], t), len(windows)):
            start, end = windows[i]
            begin = max(start, t)
            if begin >= before:
                return None
            if end - begin >= need:
                return begin
        return None


@dataclass(frozen=True)
class RoundPlan:
    round: int
    start: float  # simulated hours
    end: float
    clients: tuple[int, ...]


@dataclass
class Settled(Generic[T]):
    """What a round aggregates: fresh replies, and held ones delivered now."""

    fresh: list[T] = field(default_factory=list)
    stale: list[tuple[T, int, int, float]] = field(default_factory=list)  # item, issued, age, w
    dropped: int = 0  # delivered now but older than max-staleness
    held: int = 0  # replies of this round held for a later one


class Schedule(Protocol[T]):
    def plan_round(self, server_round: int) -> RoundPlan: ...

    def settle(self, server_round: int, replies: Mapping[int, T]) -> Settled[T]: ...


class ContactAwareSchedule(Generic[T]):
    def __init__(
        self,
        plan: ContactPlan,
        *,
        window_hours: float,
        max_clients: int,
        max_staleness: int,
        decay: float,
        train_hours: float = 0.0,
        seed: int = 0,
    ) -> None:
        if window_hours <= 0 or max_clients < 1 or max_staleness < 0 or not 0 < decay <= 1:
            raise ValueError("window > 0, max clients >= 1, staleness >= 0, 0 < decay <= 1")
        self.plan = plan
        self.window = window_hours
        self.max_clients = max_clients
        self.max_staleness = max_staleness
        self.decay = decay
        self.train = train_hours
        self._rng = random.Random(seed)
        self._due: dict[int, tuple[int, int]] = {}  # client -> (issued round, delivery round)
        self._held: dict[int, list[tuple[T, int]]] = {}  # delivery round -> (item, issued)

    def busy(self, client: int, server_round: int) -> bool:
        """Still owes a reply that is not delivered before ``server_round``."""
        due = self._due.get(client)
        return due is not None and due[1] >= server_round

    def plan_round(self, server_round: int) -> RoundPlan:
        t0, t1 = (server_round - 1) * self.window, server_round * self.window
        ready = {
            c: t
            for c in range(self.plan.num_clients)
            if not self.busy(c, server_round)
            and (t := self.plan.next_contact(c, t0, before=t1)) is not None
        }
        chosen = sorted(ready)
        if len(chosen) > self.max_clients:
            chosen = sorted(self._rng.sample(chosen, self.max_clients))
        for c in chosen:
            back = self.plan.next_contact(c, ready[c] + self.train)
            delivery = math.inf if back is None else math.floor(back / self.window) + 1
            self._due[c] = (server_round, int(min(delivery, 2**31)))
        return RoundPlan(server_round, t0, t1, tuple(chosen))

    def settle(self, server_round: int, replies: Mapping[int, T]) -> Settled[T]:
        out: Settled[T] = Settled()
        for client, item in replies.items():
            issued, delivery = self._due.get(client, (server_round, server_round))
            if issued != server_round:
                continue  # not this round's work: ignore
            if delivery <= server_round:
                out.fresh.append(item)
            else:
                self._held.setdefault(delivery, []).append((item, issued))
                out.held += 1
        # Work sent this round that never came back (client failed): the client is free again.
        for client, (issued, _) in list(self._due.items()):
            if issued == server_round and client not in replies:
                del self._due[client]
        for item, issued in self._held.pop(server_round, []):
            age = server_round - issued
            if age <= self.max_staleness:
                out.stale.append((item, issued, age, self.decay**age))
            else:
                out.dropped += 1
        return out


class SynchronousSchedule(Generic[T]):
    """Contact-unaware: every sampled client must receive and return before the next round."""

    def __init__(
        self, plan: ContactPlan, *, max_clients: int, train_hours: float = 0.0, seed: int = 0
    ) -> None:
        self.plan = plan
        self.max_clients = max_clients
        self.train = train_hours
        self.now = 0.0
        self._rng = random.Random(seed)

    def round_trip(self, client: int, t: float) -> float | None:
        """When ``client``, given work at ``t``, has delivered its reply (None: never)."""
        got = self.plan.next_contact(client, t)
        return None if got is None else self.plan.next_contact(client, got + self.train)

    def plan_round(self, server_round: int) -> RoundPlan:
        start = self.now
        n = self.plan.num_clients
        reachable = [c for c in range(n) if self.round_trip(c, start) is not None]
        size = min(self.max_clients, len(reachable))
        chosen = tuple(sorted(self._rng.sample(reachable, size)))
        ends = [self.round_trip(c, start) for c in chosen]
        self.now = max([e for e in ends if e is not None], default=start)
        if not chosen:
            log.warning("round %d: no client has a contact left in the plan", server_round)
        return RoundPlan(server_round, start, self.now, chosen)

    def settle(self, server_round: int, replies: Mapping[int, T]) -> Settled[T]:
        return Settled(fresh=list(replies.values()))
