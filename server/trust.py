"""Trust from history: each client's agreement with the consensus and with its own past.

A robust rule judges one round at a time; an attacker that lies a little every round, or that
is honest until it is trusted (a sleeper), is seen better over rounds. ExpGuard (Roux, Zimmer
and Pokutta, ICLR 2025) keeps a weight per client that shrinks with its distance from the
aggregate round after round. Here every client, keyed by its stable identity (the name its
replies carry), has a trust score in [0, 1]:

* each round it takes part, its *agreement* is measured: with the round's consensus
  (:func:`prediction_agreement` against the coordinate-wise median of the replies, or, in
  statistics mode, how the aggregate discriminant classifies its class means:
  server/statistics_rules.py), times its agreement with its own past (its previous reply on
  the tiles both cover, or its previous statistics: a shard does not change);
* agreement is relative: divided by the median agreement of the clients scored with it, so
  that 1 is a typical client whatever the data's skew, and capped at 1;
* trust is the exponential moving average of those agreements, the first one taken whole:
  ``trust = memory * trust + (1 - memory) * agreement``.

A client under ``threshold`` is *flagged*. The ``history`` aggregation rule weighs each client
by its trust and leaves the flagged ones out (server/defence.py). No Flower here: keys,
arrays and numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from common.errors import ConfigError


def prediction_agreement(probs: np.ndarray, consensus: np.ndarray) -> float:
    """1 minus the mean total-variation distance between the rows of two (n, C) arrays."""
    p, q = np.asarray(probs, dtype=np.float64), np.asarray(consensus, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(f"agreement of arrays of shapes {p.shape} and {q.shape}")
    if not len(p):
        return 1.0
    return float(1.0 - 0.5 * np.abs(p - q).sum(axis=1).mean())


def overlap_agreement(
    indices: np.ndarray, probs: np.ndarray, past_indices: np.ndarray, past_probs: np.ndarray
) -> float | None:
    """:func:`prediction_agreement` of a reply with the same client's earlier one, on the
    reference tiles both cover (None when they share none)."""
    common, now, then = np.intersect1d(indices, past_indices, return_indices=True)
    if not len(common):
        return None
    return prediction_agreement(np.asarray(probs)[now], np.asarray(past_probs)[then])


def relative(agreements: dict[str, float]) -> dict[str, float]:
    """Each agreement divided by their median (capped at 1): 1 for a typical client."""
    if not agreements:
        return {}
    median = float(np.median(list(agreements.values())))
    if median <= 0:
        return {k: 1.0 for k in agreements}
    return {k: min(1.0, max(0.0, v / median)) for k, v in agreements.items()}


@dataclass
class ClientTrust:
    score: float
    rounds: int  # rounds in which it was scored
    last_round: int
    last_agreement: float


class TrustLedger:
    """Trust per client key, its history summarised per round, and its checkpointable state."""

    def __init__(self, threshold: float = 0.5, memory: float = 0.4) -> None:
        if not (math.isfinite(threshold) and 0 < threshold < 1):
            raise ConfigError(f"trust-threshold must be in (0, 1), got {threshold}")
        if not (math.isfinite(memory) and 0 <= memory < 1):
            raise ConfigError(f"trust-memory must be in [0, 1), got {memory}")
        self.threshold = threshold
        self.memory = memory
        self.clients: dict[str, ClientTrust] = {}
        # prediction mode: each client's last reply (reference indices, probabilities)
        self.past: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def trust(self, key: str) -> float:
        """A client's trust; 1 for one never scored."""
        known = self.clients.get(key)
        return 1.0 if known is None else known.score

    def weight(self, key: str) -> float:
        """What the client weighs in the ``history`` rule: its trust, 0 once flagged."""
        score = self.trust(key)
        return 0.0 if score < self.threshold else score

    def observe(self, server_round: int, agreements: dict[str, float]) -> None:
        """Fold one round's agreements (relative, in [0, 1]) into the clients' trust."""
        for key, agreement in agreements.items():
            a = min(1.0, max(0.0, float(agreement)))
            known = self.clients.get(key)
            if known is None:
                self.clients[key] = ClientTrust(a, 1, server_round, a)
                continue
            known.score = self.memory * known.score + (1.0 - self.memory) * a
            known.rounds += 1
            known.last_round = server_round
            known.last_agreement = a

    @property
    def flagged(self) -> list[str]:
        return sorted(k for k, c in self.clients.items() if c.score < self.threshold)

    def summary(self, scored: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """What report.json shows after a round: how many clients are known and under the
        threshold, the lowest and median trust, the flagged keys, and the trust of the
        clients scored in the round (``scored``)."""
        scores = [c.score for c in self.clients.values()]
        return {
            "threshold": self.threshold,
            "clients": len(scores),
            "under_threshold": len(self.flagged),
            "min": min(scores) if scores else None,
            "median": float(np.median(scores)) if scores else None,
            "flagged": self.flagged,
            "scored": {k: round(self.trust(k), 4) for k in sorted(scored) if k in self.clients},
        }

    def state(self) -> dict[str, Any]:
        """Everything :meth:`load_state` needs (plain types and arrays, for the checkpoint)."""
        return {
            "threshold": self.threshold,
            "memory": self.memory,
            "clients": {k: asdict(c) for k, c in self.clients.items()},
            "past": {k: (i.copy(), p.copy()) for k, (i, p) in self.past.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.clients = {k: ClientTrust(**c) for k, c in state.get("clients", {}).items()}
        self.past = {
            k: (np.asarray(i), np.asarray(p)) for k, (i, p) in state.get("past", {}).items()
        }
