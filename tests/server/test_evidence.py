"""Fusion of the teacher's labels with the statistics' discriminant, class by class."""

from __future__ import annotations

import numpy as np
import pytest

from server.evidence import fuse_by_evidence


def _pair() -> tuple[np.ndarray, np.ndarray]:
    teacher = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]], np.float32)
    other = np.array([[0.1, 0.1, 0.8], [0.2, 0.7, 0.1]], np.float32)
    return teacher, other


def test_max_keeps_the_teacher_where_the_archive_holds_the_stronger_evidence() -> None:
    teacher, other = _pair()
    archive = np.array([400.0, 400.0, 20.0])
    clients = np.array([700.0, 700.0, 700.0])  # discounted by 0.5: 350 < 400, but 350 > 20
    fused = fuse_by_evidence(teacher, other, archive, clients, 0.5, "max")
    weight = np.array([1.0, 1.0, 20.0 / 350.0])
    mixed = weight * teacher + (1 - weight) * other
    np.testing.assert_allclose(fused, mixed / mixed.sum(1, keepdims=True), rtol=1e-6)
    assert fused[0].argmax() == 2  # the class the archive lacks: the discriminant decides
    # no client evidence beyond the archive's anywhere: exactly the teacher's labels
    same = fuse_by_evidence(teacher, other, archive, np.array([10.0, 10.0, 10.0]), 0.5, "max")
    assert np.array_equal(same, teacher)  # bit for bit: the no-client control's targets


def test_ratio_lets_every_client_tile_move_the_weight() -> None:
    teacher, other = _pair()
    archive, clients = np.array([400.0, 400.0, 20.0]), np.array([100.0, 100.0, 100.0])
    fused = fuse_by_evidence(teacher, other, archive, clients, 0.5, "ratio")
    weight = archive / (archive + 0.5 * clients)
    mixed = weight * teacher + (1 - weight) * other
    np.testing.assert_allclose(fused, mixed / mixed.sum(1, keepdims=True), rtol=1e-6)
    assert not np.allclose(fused, teacher / teacher.sum(1, keepdims=True))


def test_a_class_nobody_holds_keeps_the_teacher_and_a_bad_rule_is_refused() -> None:
    teacher, other = _pair()
    none = np.zeros(3)
    for rule in ("max", "ratio"):
        fused = fuse_by_evidence(teacher, other, none, none, 0.5, rule)
        np.testing.assert_allclose(fused, teacher / teacher.sum(1, keepdims=True), rtol=1e-6)
    with pytest.raises(ValueError, match="choose one of max, ratio"):
        fuse_by_evidence(teacher, other, none, none, 0.5, "mean")
