"""Knowledge from class statistics, fused with the teacher per class by evidence.

Soft predictions on the reference set cannot carry what a 70-tile shard knows: a client's
reply is pulled towards the teacher it was trained from, and where the teacher lacks a class
so does the reply. Class statistics in the shared feature space (``common.class_stats``) do
carry it. The ground pools them with its own archive's, turns them into a linear
discriminant, and scores every reference tile with it. Per class, the teacher's soft labels
and the discriminant's are then mixed by evidence, with ``a_c`` the archive's tiles of class
``c`` (what the teacher learnt it from) and ``n_c`` the clients' (what only the discriminant
saw). The teacher's weight on class ``c`` is, by ``statistics-fusion``:

- ``max`` (the default): ``a_c / max(a_c, discount * n_c)``. The stronger evidence leads: the
  teacher keeps its whole weight on every class the archive holds at least as much evidence
  of as the clients' discounted tiles, and cedes it in proportion beyond. Where the clients
  hold nothing the archive lacks, the targets are exactly the teacher's.
- ``ratio``: ``a_c / (a_c + discount * n_c)``, every client tile moving the weight. Measured:
  even a small share of the discriminant on classes the teacher knows well costs the global
  student 0.2-0.5 points (docs/distillation.md), although the targets' accuracy does not move.

``discount`` < 1 because one tile seen through the small frozen backbone is worth less than
one the teacher was trained on (docs/distillation.md measures it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from common.class_stats import ClassStats, GroundFeatures, linear_discriminant
from common.config import FUSION_RULES, RunConfig
from server.replies import ClientReply

log = logging.getLogger(__name__)


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def fuse_by_evidence(
    teacher: np.ndarray,
    other: np.ndarray,
    teacher_counts: np.ndarray,
    client_counts: np.ndarray,
    discount: float,
    rule: str = "max",
) -> np.ndarray:
    """Per-class linear pool of two (N, C) distributions, weighted by evidence (see module)."""
    if rule not in FUSION_RULES:
        raise ValueError(f"fusion rule {rule!r}: choose one of {', '.join(FUSION_RULES)}")
    a = np.asarray(teacher_counts, dtype=np.float64)
    n = np.asarray(client_counts, dtype=np.float64)
    denom = np.maximum(a, discount * n) if rule == "max" else a + discount * n
    weight = np.where(denom > 0, a / np.where(denom > 0, denom, 1.0), 1.0)
    if np.all(weight >= 1.0):  # the teacher's labels as they are, not renormalised copies
        return np.asarray(teacher, dtype=np.float32)
    mixed = weight * teacher + (1.0 - weight) * other
    fused: np.ndarray = (mixed / mixed.sum(axis=1, keepdims=True)).astype(np.float32)
    return fused


class StatisticsKnowledge:
    """The ground's and the clients' class statistics, and what they say on the reference set.

    ``archive``: the archive's statistics through the shared backbone (``views`` views per
    tile); ``reference``: the reference tiles' features (N, D). A client's statistics replace
    its earlier ones (a shard does not change), keyed by the client's stable name."""

    def __init__(
        self,
        archive: ClassStats,
        reference: np.ndarray,
        *,
        views: int = 8,
        shrinkage: float = 0.02,
        temperature: float = 0.5,
        discount: float = 0.5,
        rule: str = "max",
    ) -> None:
        if reference.ndim != 2 or reference.shape[1] != archive.dim:
            raise ValueError(f"reference features {reference.shape} for {archive.dim} features")
        self.archive = archive
        self.reference = reference
        self.views = views
        self.shrinkage = shrinkage
        self.temperature = temperature
        self.discount = discount
        self.rule = rule
        self.clients: dict[str, ClassStats] = {}

    def add(self, client: str, stats: ClassStats) -> None:
        self.clients[client] = stats

    def pool(self, replies: Iterable[ClientReply]) -> bool:
        """Keep the class statistics of the replies that carry some as their clients' newest
        (a client without a name by its node id); did any arrive?"""
        arrived = [
            (r.client_name or f"node-{r.node_id}", r.statistics)
            for r in replies
            if r.statistics is not None
        ]
        for name, stats in arrived:
            self.add(name, stats)
        return bool(arrived)

    @property
    def client_counts(self) -> np.ndarray:
        """Client tiles per class (views divided out)."""
        total = np.zeros(self.archive.num_classes)
        for s in self.clients.values():
            total += s.counts
        return total / self.views

    @property
    def archive_counts(self) -> np.ndarray:
        return self.archive.counts / self.views

    def pooled(self) -> ClassStats:
        pooled = self.archive
        for s in self.clients.values():
            pooled = pooled + s
        return pooled

    def probs(self) -> np.ndarray:
        """The pooled discriminant's (tempered) class probabilities on every reference tile."""
        weight, bias, _ = linear_discriminant(self.pooled(), self.shrinkage)
        return softmax((self.reference @ weight.T + bias) * self.temperature)

    def fuse(self, targets: np.ndarray) -> np.ndarray:
        """``targets`` (the soft knowledge on every reference tile) fused with the statistics."""
        if not self.clients:
            return targets
        return fuse_by_evidence(
            targets,
            self.probs(),
            self.archive_counts,
            self.client_counts,
            self.discount,
            self.rule,
        )


def ground_statistics(
    cfg: RunConfig, feats: GroundFeatures, num_classes: int
) -> StatisticsKnowledge:
    """The ground's side of the statistics: its archive's, and the reference tiles' features,
    through the same frozen backbone the clients use."""
    return StatisticsKnowledge(
        ClassStats.of(feats.archive, feats.labels, num_classes),
        feats.reference,
        views=feats.archive.shape[0],
        shrinkage=cfg.statistics_shrinkage,
        temperature=cfg.statistics_temperature,
        discount=cfg.statistics_discount,
        rule=cfg.statistics_fusion,
    )
