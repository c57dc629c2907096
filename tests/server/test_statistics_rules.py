"""Aggregation rules for class statistics: the mean is the old sum, the robust rules bound
inflated and mislabelled statistics, and agreement tells them from honest ones."""

from __future__ import annotations

import numpy as np
import pytest

from common.class_stats import ClassStats
from common.errors import ConfigError
from server.evidence import StatisticsKnowledge
from server.statistics_rules import (
    RuledStatistics,
    evidence_caps,
    robust_pool,
    statistics_agreement,
    statistics_self_agreement,
    weighted_median,
)

C, D = 4, 6
RNG = np.random.default_rng(0)
CENTRES = RNG.normal(0, 3, (C, D))


def _stats(labels: np.ndarray, true: np.ndarray | None = None, scale: float = 1.0) -> ClassStats:
    """Statistics of tiles of classes ``true`` (default: ``labels``) filed under ``labels``."""
    rng = np.random.default_rng(len(labels) + int(labels.sum()))
    classes = labels if true is None else true
    s = ClassStats.of(CENTRES[classes] + rng.normal(0, 0.5, (len(labels), D)), labels, C)
    return ClassStats(s.counts * scale, s.sums * scale, s.scatter * scale)


def _federation() -> tuple[ClassStats, dict[str, ClassStats]]:
    archive = _stats(np.repeat(np.arange(C), 30))
    honest = {f"h{k}": _stats(np.full(40, k % C)) for k in range(8)}
    return archive, honest


def _class_means(pooled: ClassStats) -> np.ndarray:
    return pooled.sums / pooled.counts[:, None]


def test_the_mean_is_the_sum_statistics_knowledge_always_made() -> None:
    archive, honest = _federation()
    pooled, client_counts = robust_pool(archive, honest, "mean")
    plain = StatisticsKnowledge(archive, np.zeros((3, D)), views=1)
    for k, s in honest.items():
        plain.add(k, s)
    np.testing.assert_array_equal(pooled.scatter, plain.pooled().scatter)
    np.testing.assert_array_equal(client_counts, plain.client_counts)
    ruled = RuledStatistics(archive, RNG.normal(0, 3, (20, D)), views=1)
    for k, s in honest.items():
        plain.reference = ruled.reference
        ruled.add(k, s)
    targets = np.full((20, C), 1 / C, np.float32)
    np.testing.assert_array_equal(ruled.fuse(targets), plain.fuse(targets))


def test_evidence_cap_brings_an_inflated_client_down_to_the_median() -> None:
    _, honest = _federation()
    inflated = {**honest, "liar": _stats(np.full(40, 1), scale=50.0)}
    caps = evidence_caps(inflated, cap=1.0)
    assert caps["liar"] == pytest.approx(1 / 50)
    assert all(caps[k] == 1.0 for k in honest)


def test_weighted_median_follows_the_weight_not_the_count_of_values() -> None:
    values = np.array([[0.0, 5.0], [1.0, 6.0], [10.0, -3.0]])
    np.testing.assert_array_equal(weighted_median(values, np.array([1.0, 1.0, 1.0])), [1.0, 5.0])
    np.testing.assert_array_equal(weighted_median(values, np.array([1.0, 1.0, 5.0])), [10.0, -3.0])


@pytest.mark.parametrize("rule", ["trimmed-mean", "median"])
def test_robust_rules_keep_class_means_where_the_honest_put_them(rule: str) -> None:
    archive, honest = _federation()
    # a liar files class-0 tiles under class 2, claiming 20 times its tiles; two honest
    # clients and the archive hold class 2 (a robust rule needs them to be most of its weight)
    liars = {"liar": _stats(np.full(40, 2), true=np.zeros(40, int), scale=20.0)}
    clean = _class_means(robust_pool(archive, honest, "mean")[0])
    attacked = {**honest, **liars}
    mean_shift = np.linalg.norm(
        _class_means(robust_pool(archive, attacked, "mean")[0])[2] - clean[2]
    )
    robust = _class_means(robust_pool(archive, attacked, rule)[0])
    assert mean_shift > 0.8 * np.linalg.norm(CENTRES[0] - CENTRES[2])  # the sum is taken over
    assert np.linalg.norm(robust[2] - clean[2]) < 0.15 * mean_shift
    with pytest.raises(ConfigError, match="statistics rule"):
        robust_pool(archive, honest, "entropy-reduced")


def test_weights_leave_a_zero_weight_client_out() -> None:
    archive, honest = _federation()
    liar = _stats(np.full(40, 2), true=np.zeros(40, int), scale=20.0)
    pooled, _ = robust_pool(archive, {**honest, "liar": liar}, "mean", weights={"liar": 0.0})
    np.testing.assert_allclose(pooled.counts, robust_pool(archive, honest, "mean")[0].counts)


def test_agreement_is_high_for_honest_statistics_and_low_for_mislabelled_ones() -> None:
    archive, honest = _federation()
    aggregate, _ = robust_pool(archive, honest, "median")
    assert statistics_agreement(honest["h1"], aggregate, 0.02, 0.5) > 0.95
    flipped = _stats(np.full(40, 3), true=np.ones(40, int))
    assert statistics_agreement(flipped, aggregate, 0.02, 0.5) < 0.05
    mixed = _stats(np.r_[np.full(20, 1), np.full(20, 3)], true=np.ones(40, int))
    assert 0.3 < statistics_agreement(mixed, aggregate, 0.02, 0.5) < 0.7


def test_self_agreement_is_the_overlap_of_class_shares() -> None:
    a = _stats(np.r_[np.zeros(30, int), np.ones(10, int)])
    assert statistics_self_agreement(a, a) == 1.0
    assert statistics_self_agreement(a, _stats(np.full(40, 2))) == 0.0
    assert statistics_self_agreement(a, _stats(np.zeros(40, int))) == pytest.approx(0.75)
