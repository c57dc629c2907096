"""Simulated client resources and failures, per role: dropout, stragglers, CPU share.

Framework-free: decisions only; ``clients/app.py`` turns them into an error reply, a thread
count and a sleep. Every decision is a pure function of (seed, partition, round), so a rerun
of the same config drops and delays the same clients in the same rounds.

* ``dropout`` p: a sampled client fails the round with probability p (it replies with an
  error; the server counts it as failed and aggregates the others).
* ``straggler-seconds`` s: the client sleeps s seconds before it replies (on top of its work).
* ``cpu-share`` c: the client's processor has c cores' worth of compute. Its training uses
  max(1, floor(c)) torch threads; below one core (c < 1) it also idles (1/c - 1) times its
  measured compute time, so a satellite with c = 0.25 takes four times as long. In Flower's
  Ray simulation this is per client, inside the CPUs Ray reserves per actor
  (``client-resources-num-cpus``, one for every role): it emulates a slower payload computer,
  it does not change Ray's scheduling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from common.config import RunConfig

DROPOUT_REASON = "dropout"
_DROPOUT_STREAM = 0xD409  # keeps dropout draws apart from every other seeded stream


@dataclass(frozen=True)
class Fate:
    """What happens to one client in one round."""

    drop: bool = False
    straggle_seconds: float = 0.0
    threads: int | None = None  # torch threads; None: keep the node's own setting
    cpu_share: float = 1.0

    def idle_seconds(self, compute_seconds: float) -> float:
        """Sleep after ``compute_seconds`` of work: straggler delay plus a slow CPU's share."""
        slow = (1.0 / self.cpu_share - 1.0) * compute_seconds if self.cpu_share < 1 else 0.0
        return self.straggle_seconds + max(0.0, slow)


@dataclass(frozen=True)
class FailurePlan:
    """Per-role dropout probability, straggler delay and CPU share, parsed once."""

    seed: int = 0
    dropout: dict[str, float] = field(default_factory=dict)
    straggler_seconds: dict[str, float] = field(default_factory=dict)
    cpu_share: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: RunConfig) -> FailurePlan:
        return cls(
            seed=cfg.seed,
            dropout=cfg.dropout_by_role(),
            straggler_seconds=cfg.straggler_by_role(),
            cpu_share=cfg.cpu_share_by_role(),
        )

    @property
    def active(self) -> bool:
        return bool(self.dropout or self.straggler_seconds or self.cpu_share)

    def drops(self, role: str, partition_id: int, server_round: int) -> bool:
        """Whether this client fails this round: one uniform draw from (seed, partition, round)."""
        p = self.dropout.get(role, 0.0)
        if p <= 0:
            return False
        rng = np.random.default_rng([self.seed, partition_id, server_round, _DROPOUT_STREAM])
        return bool(rng.random() < p)

    def fate(self, role: str, partition_id: int, server_round: int) -> Fate:
        share = self.cpu_share.get(role)
        return Fate(
            drop=self.drops(role, partition_id, server_round),
            straggle_seconds=self.straggler_seconds.get(role, 0.0),
            threads=None if share is None else max(1, math.floor(share)),
            cpu_share=1.0 if share is None else share,
        )

    def dropout_message(self, role: str, partition_id: int, server_round: int) -> str:
        return (
            f"{DROPOUT_REASON}: client {partition_id} ({role}) dropped out of round "
            f"{server_round} (simulated: dropout {role}={self.dropout.get(role, 0.0):g})"
        )
