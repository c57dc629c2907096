"""Aggregation rules for class statistics (``client-statistics = 1``), and how far a client's
statistics agree with the aggregate.

In statistics mode a reply carries per-class counts, feature sums and scatter, which the
ground adds to its archive's (server/evidence.py). Summing is the ``mean``: a client that
claims many tiles, or files its tiles under the wrong classes, moves the pooled class means
and, through the counts, the fusion's trust in the discriminant. The robust rules bound both:

* *evidence cap*: a client's statistics weigh at most ``cap`` times the median client's
  total count (scaled down as a whole, so its class means stay its own);
* ``median``: each class's mean is the count-weighted coordinate-wise median of the class
  means of everyone holding that class (the archive is one of them);
* ``trimmed-mean``: each class keeps the contributors closest to that median, dropping the
  farthest ones (the last one in part) until ``trim`` of the class's weight is gone (never
  the archive);
* ``history`` (server/trust.py): each client's statistics weigh its trust, flagged clients
  none, then its base rule.

The pooled scatter is rebuilt from each kept client's within-class scatter (in proportion to
what it keeps) and the robust class means, so the result is a :class:`ClassStats` that the
discriminant reads as before. Framework-free: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from common.class_stats import ClassStats, GroundFeatures, linear_discriminant
from common.config import RunConfig
from common.errors import ConfigError
from server.evidence import StatisticsKnowledge, fuse_by_evidence, ground_statistics, softmax

STATISTICS_RULES = ("mean", "trimmed-mean", "median")
EVIDENCE_CAP = 1.0  # a client's statistics weigh at most this many median clients


def _means(stats: ClassStats) -> np.ndarray:
    n = stats.counts
    out: np.ndarray = np.where(n[:, None] > 0, stats.sums / np.maximum(n, 1e-12)[:, None], 0.0)
    return out


def within_scatter(stats: ClassStats) -> np.ndarray:
    """The scatter around each class's own mean, summed over the classes: (D, D)."""
    mu = _means(stats)
    out: np.ndarray = stats.scatter - (mu.T * stats.counts) @ mu
    return out


def evidence_caps(clients: Mapping[str, ClassStats], cap: float = EVIDENCE_CAP) -> dict[str, float]:
    """Per client, the factor (<= 1) that brings its total count to at most ``cap`` times
    the median client's."""
    totals = {k: float(s.counts.sum()) for k, s in clients.items()}
    if not totals:
        return {}
    bound = cap * float(np.median(list(totals.values())))
    return {k: 1.0 if t <= bound or t <= 0 else bound / t for k, t in totals.items()}


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Coordinate-wise weighted median of ``values`` (m, D) with weights (m,) > 0."""
    order = np.argsort(values, axis=0, kind="stable")
    w = np.asarray(weights, dtype=np.float64)[order]
    cum = np.cumsum(w, axis=0)
    first = (cum >= 0.5 * cum[-1:]).argmax(axis=0)
    picked = order[first, np.arange(values.shape[1])]
    out: np.ndarray = values[picked, np.arange(values.shape[1])]
    return out


def robust_pool(
    archive: ClassStats,
    clients: Mapping[str, ClassStats],
    rule: str,
    *,
    trim: float = 0.2,
    weights: Mapping[str, float] | None = None,
    cap: float | None = EVIDENCE_CAP,
) -> tuple[ClassStats, np.ndarray]:
    """(pooled statistics, the clients' share of each class's count) under ``rule``;
    ``weights`` (trust, 0 = left out) multiply each client's evidence first, after the
    evidence ``cap`` (None: no cap; the plain ``mean`` has none)."""
    if rule not in STATISTICS_RULES:
        raise ConfigError(f"statistics rule {rule!r}: choose one of {', '.join(STATISTICS_RULES)}")
    trusted = {k: s for k, s in clients.items() if weights is None or weights.get(k, 1.0) > 0}
    capped = cap is not None and (rule != "mean" or weights is not None)
    caps = evidence_caps(trusted, cap) if capped and cap else dict.fromkeys(trusted, 1.0)
    scale = {k: caps[k] * (1.0 if weights is None else weights.get(k, 1.0)) for k in trusted}
    if rule == "mean":
        pooled = archive
        for k, s in trusted.items():
            f = scale[k]
            pooled = pooled + ClassStats(s.counts * f, s.sums * f, s.scatter * f)
        return pooled, pooled.counts - archive.counts
    names = list(trusted)
    counts = np.array([trusted[k].counts * scale[k] for k in names]).reshape(
        -1, archive.num_classes
    )
    means = np.array([_means(trusted[k]) for k in names]).reshape(
        len(names), archive.num_classes, archive.dim
    )
    keep = _kept(archive, counts, means, rule, trim)  # (m, C) share of each count kept
    num_classes, dim = archive.num_classes, archive.dim
    arch_means = _means(archive)
    pooled_counts = archive.counts + (keep * counts).sum(axis=0)
    pooled_means = np.zeros((num_classes, dim))
    for c in range(num_classes):
        held = counts[:, c] * keep[:, c] > 0
        w = np.concatenate([[archive.counts[c]], counts[held, c] * keep[held, c]])
        v = np.vstack([arch_means[c][None, :], means[held, c]])
        if w.sum() <= 0:
            continue
        if rule == "median":
            pooled_means[c] = weighted_median(v[w > 0], w[w > 0])
        else:
            pooled_means[c] = (w[:, None] * v).sum(axis=0) / w.sum()
    within = within_scatter(archive)
    for i, k in enumerate(names):
        total = counts[i].sum()
        share = (keep[i] * counts[i]).sum() / total if total > 0 else 0.0
        within = within + scale[k] * share * within_scatter(trusted[k])
    scatter = within + (pooled_means.T * pooled_counts) @ pooled_means
    pooled = ClassStats(pooled_counts, pooled_means * pooled_counts[:, None], scatter)
    return pooled, pooled_counts - archive.counts


def _kept(
    archive: ClassStats, counts: np.ndarray, means: np.ndarray, rule: str, trim: float
) -> np.ndarray:
    """(m, C): the share of each client's count of each class that the rule keeps (the
    median keeps every count and takes its mean robustly; the trimmed mean drops the
    contributors farthest from the median until ``trim`` of the class's weight is gone)."""
    keep = np.ones_like(counts)
    if rule == "median":
        return keep
    arch_means = _means(archive)
    for c in range(counts.shape[1]):
        held = np.flatnonzero(counts[:, c] > 0)
        if len(held) < 2:
            continue
        w = np.concatenate([[archive.counts[c]], counts[held, c]])
        v = np.vstack([arch_means[c][None, :], means[held, c]])
        centre = weighted_median(v[w > 0], w[w > 0])
        dist = np.linalg.norm(means[held, c] - centre, axis=1)
        budget = trim * w.sum()
        for j in held[np.argsort(-dist, kind="stable")]:
            if budget <= 0:
                break
            cut = min(counts[j, c], budget)  # the last one dropped may be cut in part
            keep[j, c] = 1.0 - cut / counts[j, c]
            budget -= cut
    return keep


def statistics_agreement(
    stats: ClassStats, aggregate: ClassStats, shrinkage: float, temperature: float
) -> float:
    """How the aggregate's discriminant classifies a client's class means: the probability
    it gives each class the client claims, averaged with the client's counts (1: every
    class mean where the aggregate expects it)."""
    n = stats.counts
    if n.sum() <= 0:
        return 1.0
    weight, bias, _ = linear_discriminant(aggregate, shrinkage)
    held = np.flatnonzero(n > 0)
    scores = (_means(stats)[held] @ weight.T + bias) * temperature
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    return float((n[held] * probs[np.arange(len(held)), held]).sum() / n[held].sum())


def statistics_self_agreement(old: ClassStats, new: ClassStats) -> float:
    """Overlap of the class shares of a client's earlier and newer statistics (1: the same
    classes in the same proportions; a shard does not change)."""
    p, q = old.counts, new.counts
    if p.sum() <= 0 or q.sum() <= 0:
        return 1.0
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


class RuledStatistics(StatisticsKnowledge):
    """The statistics pool, aggregated by ``rule`` (``mean``: the sum, as
    :class:`StatisticsKnowledge`), each client's evidence times ``weights`` when set (the
    ``history`` rule's trust)."""

    def __init__(
        self,
        archive: ClassStats,
        reference: np.ndarray,
        *,
        aggregation: str = "mean",
        trim: float = 0.2,
        **options: float | int | str,
    ) -> None:
        super().__init__(archive, reference, **options)  # type: ignore[arg-type]
        self.aggregation = aggregation
        self.trim = trim
        self.weights: dict[str, float] | None = None

    def robust(self) -> tuple[ClassStats, np.ndarray]:
        return robust_pool(
            self.archive, self.clients, self.aggregation, trim=self.trim, weights=self.weights
        )

    def pooled(self) -> ClassStats:
        return self.robust()[0]

    @property
    def client_counts(self) -> np.ndarray:
        return self.robust()[1] / self.views

    def fuse(self, targets: np.ndarray) -> np.ndarray:
        if not self.clients:
            return targets
        pooled, counts = self.robust()
        weight, bias, _ = linear_discriminant(pooled, self.shrinkage)
        probs = softmax((self.reference @ weight.T + bias) * self.temperature)
        return fuse_by_evidence(
            targets, probs, self.archive_counts, counts / self.views, self.discount, self.rule
        )


def ruled_statistics(cfg: RunConfig, feats: GroundFeatures, num_classes: int) -> RuledStatistics:
    """The ground's statistics (server/evidence.py ``ground_statistics``) under the run's
    aggregation rule (``history``: its ``history-base``)."""
    base = ground_statistics(cfg, feats, num_classes)
    rule = cfg.history_base if cfg.aggregation == "history" else cfg.aggregation
    return RuledStatistics(
        base.archive,
        base.reference,
        aggregation=rule if rule in STATISTICS_RULES else "mean",
        trim=cfg.trim,
        views=base.views,
        shrinkage=base.shrinkage,
        temperature=base.temperature,
        discount=base.discount,
        rule=base.rule,
    )
