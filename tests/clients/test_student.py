from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clients.roles import PROFILES
from clients.student import local_round
from common.config import ROLES, RunConfig
from common.federation import load_federation
from common.models import build_model, count_parameters
from common.training import TrainSettings, predict_proba


def test_local_round_predicts_exactly_the_requested_tiles(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    train, holdout = fed.client_splits(0, 0.2, cfg.seed)
    indices = np.array([0, 3, 5])
    targets = np.full((3, 10), 0.1, np.float32)
    student = build_model("tiny", 3, 10)
    before = [p.detach().clone() for p in student.parameters()]
    result = local_round(
        student,
        train,
        holdout,
        fed.reference_images(indices),
        targets,
        TrainSettings(epochs=1, batch_size=16),
        temperature=2.0,
        kd_weight=1.0,
    )
    assert result.probs.shape == (3, 10)
    np.testing.assert_allclose(result.probs.sum(1), 1.0, atol=1e-5)
    assert result.num_examples == len(train) > 0
    assert 0.0 <= result.local_accuracy <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


def test_every_role_has_a_profile() -> None:
    assert set(PROFILES) == set(ROLES)


def test_roles_get_students_sized_for_them() -> None:
    sizes = {r: count_parameters(build_model(p.student, 3, 10)) for r, p in PROFILES.items()}
    assert sizes["satellite"] < 100_000 < sizes["drone"] < sizes["ground-station"]
    assert count_parameters(build_model("teacher", 3, 10)) >= 30 * sizes["satellite"]


def test_digest_moves_the_kept_student_towards_the_targets_after_the_reply(
    fixture_data: Path,
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    train, holdout = fed.client_splits(0, 0.2, cfg.seed)
    reference = fed.reference_images(np.arange(len(fed.partition.reference)))
    # Targets that disagree with whatever the shard teaches: everything is class 7.
    targets = np.full((len(reference), 10), 0.02, np.float32)
    targets[:, 7] = 0.82
    settings = TrainSettings(epochs=1, batch_size=8, learning_rate=3e-3, augment=False)

    def run(digest_epochs: int) -> tuple[np.ndarray, float]:
        torch.manual_seed(0)
        student = build_model("tiny", 3, 10)
        result = local_round(
            student, train, holdout, reference, targets, settings, 2.0, 1.0, digest_epochs
        )
        kept = predict_proba(student, reference)
        return result.probs, float(kept[:, 7].mean())

    reply_plain, kept_plain = run(0)
    reply_digest, kept_digest = run(5)
    # The reply comes from the student before the digest: the same with and without it.
    np.testing.assert_allclose(reply_digest, reply_plain, atol=1e-6)
    # The kept student ends closer to the targets.
    assert kept_digest > kept_plain + 0.03
