"""Refinement of the teacher from the aggregated knowledge."""

from __future__ import annotations

import copy
import csv
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from common.bands import CLASSES
from common.config import RunConfig
from common.errors import CodecError
from common.federation import load_federation
from common.training import accuracy, predict_proba
from server.teacher import TeacherRefiner, load_or_train_teacher
from tests.data.eurosat.make import make


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


def test_a_cached_teacher_is_scored_on_the_test_dir_it_is_asked_for(
    fixture_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="common.model_cache")
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3, teacher_epochs=1, batch_size=8)
    cfg = replace(cfg, seed=1207)  # a teacher no other test trains
    teacher, internal_accuracy = load_or_train_teacher(cfg, load_federation(cfg))
    assert internal_accuracy < 0.9  # one epoch on a few dozen tiles
    # A test folder labelled as the teacher sees it: its accuracy there is 1, not the internal one.
    generated = make(tmp_path / "generated", per_class=3, seed=11) / "eurosat-rgb"
    seen = predict_proba(
        teacher, load_federation(replace(cfg, test_dir=str(generated))).test_split().x
    )
    agreeing = shutil.copytree(generated, tmp_path / "agreeing")
    with (agreeing / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row, label in zip(rows, seen.argmax(axis=1), strict=True):
        row["class"] = CLASSES[label]
    with (agreeing / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    on_dir = replace(cfg, test_dir=str(agreeing))
    fed = load_federation(on_dir)
    caplog.clear()
    cached, accuracy_on_dir = load_or_train_teacher(on_dir, fed)
    assert "teacher: found in the cache" in caplog.text  # the same weights, not trained again
    test = fed.test_split()
    assert len(test) == 30
    assert accuracy_on_dir == accuracy(cached, test.x, test.y) > 0.9
    assert load_or_train_teacher(cfg, load_federation(cfg))[1] == internal_accuracy
