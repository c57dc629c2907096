"""Refinement of the teacher from the aggregated knowledge."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from common.config import RunConfig
from common.errors import CodecError
from common.federation import load_federation
from common.training import predict_proba
from server.teacher import TeacherRefiner, load_or_train_teacher


def _refiner(fixture_data: Path) -> TeacherRefiner:
    cfg = RunConfig(
        data_dir=str(fixture_data),
        num_clients=3,
        teacher_epochs=1,
        teacher_refine_epochs=2,
        teacher_refine_lr=3e-3,
        reference_per_round=8,
        batch_size=8,
        num_rounds=3,
    )
    fed = load_federation(cfg)
    teacher, _ = load_or_train_teacher(cfg, fed)
    reference = fed.reference_images(np.arange(len(fed.partition.reference)))
    archive = fed.split(fed.partition.archive)
    return TeacherRefiner(copy.deepcopy(teacher), cfg, archive, reference, fed.test_split())


def _gap(probs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.abs(probs - targets).sum(axis=1).mean())


def test_refinement_moves_the_teacher_towards_the_targets(fixture_data: Path) -> None:
    refiner = _refiner(fixture_data)
    before = refiner.soft_labels()
    # Crafted knowledge: every reference tile is confidently the next class after the
    # teacher's own choice, so moving towards it is visible.
    n, c = before.shape
    targets = np.full((n, c), 0.02 / (c - 1), np.float32)
    targets[np.arange(n), (before.argmax(1) + 1) % c] = 0.98
    after = before
    for r in (1, 2, 3):
        after = refiner.refine(targets, r)
    assert after.shape == (n, c)
    np.testing.assert_allclose(after.sum(1), 1.0, atol=1e-4)
    assert _gap(after, targets) < _gap(before, targets) - 0.05
    np.testing.assert_allclose(refiner.soft_labels(), after, atol=1e-6)
    assert 0.0 <= refiner.evaluate() <= 1.0
    with pytest.raises(ValueError, match="targets for"):
        refiner.refine(targets[:-1], 4)


def test_state_round_trip_and_a_diverged_round_rolls_back(fixture_data: Path) -> None:
    refiner = _refiner(fixture_data)
    start = refiner.soft_labels()
    state = refiner.state()
    refined = refiner.refine(start, 1)
    other = _refiner(fixture_data)
    other.load_state(refiner.state())
    np.testing.assert_allclose(other.soft_labels(), refined, atol=1e-6)
    other.load_state(state)
    np.testing.assert_allclose(other.soft_labels(), start, atol=1e-6)

    poisoned = start.copy()
    poisoned[0, 0] = np.nan  # a NaN loss poisons every weight it touches
    with pytest.raises(CodecError, match="NaN"):
        refiner.refine(poisoned, 2)
    np.testing.assert_allclose(refiner.soft_labels(), refined, atol=1e-6)  # rolled back
    assert np.isfinite(predict_proba(refiner.model, refiner.reference)).all()
    # The optimiser's moments were rolled back too: the next round trains normally.
    assert np.isfinite(refiner.refine(start, 3)).all()
