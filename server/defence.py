"""The strategy's side of trust (server/trust.py): score each round's replies, and under the
``history`` aggregation rule weigh them by their clients' trust.

Trust is kept in every run, whatever the rule, so that report.json shows who looks like an
outlier; only ``aggregation = history`` acts on it, with ``history-base`` (mean, trimmed-mean
or median) applied to what is left. A client is known by the name its replies carry
(:func:`client_key`), the same key the statistics pool uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from server.aggregation import Groups, Rule, coordinate_median
from server.evidence import StatisticsKnowledge
from server.replies import ClientReply
from server.statistics_rules import (
    RuledStatistics,
    robust_pool,
    statistics_agreement,
    statistics_self_agreement,
)
from server.trust import TrustLedger, overlap_agreement, prediction_agreement, relative


def client_key(reply: ClientReply) -> str:
    """A client's stable identity: the name its reply carries, else its node id."""
    return reply.client_name or f"node-{reply.node_id}"


class Defence:
    """Trust bookkeeping for one strategy: ``rule`` is the run's aggregation rule."""

    def __init__(self, rule: Rule, base: Rule, ledger: TrustLedger) -> None:
        if base not in (Rule.MEAN, Rule.TRIMMED_MEAN, Rule.MEDIAN):
            raise ValueError(f"history-base must be mean, trimmed-mean or median, got {base}")
        self.rule = rule
        self.base = base
        self.ledger = ledger
        self.scored: list[str] = []  # the clients scored in the last round

    @property
    def active(self) -> bool:
        return self.rule is Rule.HISTORY

    @property
    def applied(self) -> Rule:
        """The rule the replies are aggregated with once weighed."""
        return self.base if self.active else self.rule

    def weigh(self, server_round: int, groups: Groups, issued: dict[int, np.ndarray]) -> Groups:
        """Prediction mode: score every reply against its group's coordinate-wise median and
        its client's previous reply, fold that into trust; under ``history`` return the
        groups without flagged clients and with factors times trust."""
        agreements: dict[str, float] = {}
        for r, (replies, _) in groups.items():
            consensus = coordinate_median([x.probs for x in replies])
            for reply in replies:
                key = client_key(reply)
                agreement = prediction_agreement(reply.probs, consensus)
                past = self.ledger.past.get(key)
                own = overlap_agreement(issued[r], reply.probs, *past) if past else None
                agreements[key] = agreement * (1.0 if own is None else own)
                self.ledger.past[key] = (np.asarray(issued[r]).copy(), reply.probs.copy())
        self._observe(server_round, relative(agreements))
        if not self.active:
            return groups
        weighed: Groups = {}
        for r, (replies, factors) in groups.items():
            kept = [
                (x, f * self.ledger.weight(client_key(x)))
                for x, f in zip(replies, factors, strict=True)
            ]
            kept = [(x, f) for x, f in kept if f > 0]
            if kept:
                weighed[r] = ([x for x, _ in kept], [f for _, f in kept])
        return weighed

    def pool(self, server_round: int, valid: list[ClientReply], stats: StatisticsKnowledge) -> bool:
        """Statistics mode: pool the replies' statistics, score every client that replied
        (its statistics against the median pool of everyone's, times the overlap with what
        it sent before), and under ``history`` set the pool's weights. Did the knowledge's
        inputs change (statistics arrived, or weights moved)?"""
        before = {client_key(r): stats.clients.get(client_key(r)) for r in valid}
        arrived = stats.pool(valid)
        if not stats.clients:
            return arrived
        aggregate, _ = robust_pool(stats.archive, stats.clients, "trimmed-mean", trim=0.2)
        agreements = {
            k: statistics_agreement(s, aggregate, stats.shrinkage, stats.temperature)
            for k, s in stats.clients.items()
        }
        rel = relative(agreements)
        scored = {}
        for key, old in before.items():
            if key not in stats.clients:
                continue
            new = stats.clients[key]
            own = statistics_self_agreement(old, new) if old is not None and old is not new else 1
            scored[key] = rel[key] * own
        self._observe(server_round, scored)
        if not (self.active and isinstance(stats, RuledStatistics)):
            return arrived
        before_weights = stats.weights
        self.reweigh(stats)
        return arrived or stats.weights != before_weights

    def _observe(self, server_round: int, agreements: dict[str, float]) -> None:
        self.ledger.observe(server_round, agreements)
        self.scored = sorted(agreements)

    def summary(self) -> dict[str, Any]:
        """The round's trust for report.json (server/trust.py ``TrustLedger.summary``)."""
        return self.ledger.summary(self.scored)

    def restore(self, state: dict[str, Any] | None) -> None:
        """Back to a checkpoint's trust (:meth:`TrustLedger.state`)."""
        if state:
            self.ledger.load_state(state)

    def reweigh(self, stats: StatisticsKnowledge | None) -> None:
        """Under ``history``, weigh the pooled statistics by their clients' trust (after a
        resumption put both back, before the fusion)."""
        if isinstance(stats, RuledStatistics) and self.active:
            stats.weights = {k: self.ledger.weight(k) for k in stats.clients}
