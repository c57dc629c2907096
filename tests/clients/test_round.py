from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from clients.instructions import TrainInstruction
from clients.node import Node
from clients.round import (
    check_shard,
    claimed,
    fedkd_round,
    local_round,
    round_seed,
    shared_predictions,
    statistics_due,
)
from common.codec import Codec
from common.config import ROLES, RunConfig
from common.errors import DataNotFoundError
from common.federation import Split, load_federation
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


def test_roles_get_students_sized_for_them() -> None:
    cfg = RunConfig()
    sizes = {r: count_parameters(build_model(cfg.arch_of(r), 3, 10)) for r in ROLES}
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


def _probs(n: int = 40, c: int = 10) -> np.ndarray:
    return np.random.default_rng(0).dirichlet(np.full(c, 0.3), n).astype(np.float32)


def test_honest_predictions_leave_unchanged_and_lies_and_noise_are_seeded() -> None:
    p = _probs()
    honest = RunConfig(num_clients=10)
    np.testing.assert_array_equal(shared_predictions(p, honest, 0, 1), p)
    cfg = RunConfig(num_clients=10, attackers=0.2, attack="random", dp_noise=0.05)
    lie = shared_predictions(p, cfg, 1, 3)  # partition 1 of 10 is one of the two attackers
    np.testing.assert_array_equal(lie, shared_predictions(p, cfg, 1, 3))
    assert not np.array_equal(lie, shared_predictions(p, cfg, 1, 4))  # another round, other draws
    assert (lie.argmax(1) == p.argmax(1)).mean() < 0.3
    noisy = shared_predictions(p, cfg, 5, 3)  # honest, with DP noise
    assert not np.array_equal(noisy, p) and (noisy.argmax(1) == p.argmax(1)).mean() > 0.7
    np.testing.assert_allclose(noisy.sum(1), 1.0, atol=1e-5)


def test_an_attacker_estimates_the_consensus_from_its_targets_unless_omniscient() -> None:
    p = _probs()
    targets = _probs()[::-1].copy()
    cfg = RunConfig(num_clients=10, attackers=0.2, attack="lma")
    lie = shared_predictions(p, cfg, 0, 1, targets=targets)
    np.testing.assert_array_equal(lie.argmax(1), (0.5 * (targets + p)).argmin(1))
    truth = np.arange(40) % 10
    omni = RunConfig(num_clients=10, attackers=0.2, attack="lma", attack_omniscient=1)
    lie = shared_predictions(p, omni, 0, 1, targets=targets, truth=truth)
    np.testing.assert_array_equal(lie.argmax(1), (0.5 * (targets + np.eye(10)[truth])).argmin(1))
    sleeper = RunConfig(num_clients=10, attackers=0.2, attack="sleeper", attack_after=2)
    np.testing.assert_array_equal(shared_predictions(p, sleeper, 1, 2, targets=targets), p)
    assert (shared_predictions(p, sleeper, 1, 3, targets=targets).max(1) == 1).all()


def test_attackers_claim_inflated_evidence_and_a_sleeper_resends_its_statistics() -> None:
    cfg = RunConfig(num_clients=10, attackers=0.2, attack="sleeper", attack_scale=10.0)
    assert claimed(cfg, 1, 4, 7) == 70 and claimed(cfg, 2, 4, 7) == 7  # 2 is honest
    assert claimed(cfg, 1, 3, 7) == 7  # a sleeper's honest round claims what it holds
    # statistics leave once; a sleeper that sent them before turning (round 3) sends again,
    # once, the first time it is sampled after
    assert statistics_due(cfg, 2, 1, None) and not statistics_due(cfg, 2, 9, 1)
    assert statistics_due(cfg, 1, 5, 2) and not statistics_due(cfg, 1, 6, 5)
    assert not statistics_due(cfg, 1, 3, 2)  # not turned yet
    lma = RunConfig(num_clients=10, attackers=0.2, attack="lma")
    assert not statistics_due(lma, 1, 5, 2)


def test_round_seed_differs_per_round_and_run_seed() -> None:
    seeds = {round_seed(s, r) for s in (0, 1, 42) for r in range(1, 100)}
    assert len(seeds) == 3 * 99 and round_seed(42, 3) == 42_003


def test_a_client_without_training_tiles_says_it_leaves_the_round() -> None:
    node = Node(cfg=RunConfig(), partition_id=2, role="ground-station", threads=1, name="gs")
    some = Split(torch.zeros(1, 3, 64, 64), torch.zeros(1, dtype=torch.int64))
    check_shard(node, some)
    with pytest.raises(DataNotFoundError, match=r"client 2 \(ground-station\) has no usable"):
        check_shard(node, Split(some.x[:0], some.y[:0]))


def test_statistics_mode_deploys_the_grounds_head_without_training(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    train, holdout = fed.client_splits(0, 0.2, cfg.seed)
    node = Node(cfg=cfg, partition_id=0, role="satellite", threads=1, name="sat")
    student = build_model("tiny", 3, 10, seed=1)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    weight = np.random.default_rng(0).normal(size=student.head.weight.shape).astype(np.float32)
    bias = np.arange(10, dtype=np.float32)
    task = TrainInstruction(
        server_round=2,
        indices=np.arange(0),
        targets=np.zeros((0, 10), np.float32),
        codec=Codec.INT8,
        topk=3,
        temperature=2.0,
        kd_weight=1.0,
        stats=fed.stats,
        send_statistics=True,
        heads={"tiny": (weight, bias), "small": (weight[:, :2], bias)},
    )
    result = fedkd_round(node, task, student, train, holdout, fed.reference_images(task.indices))
    assert result.probs.shape == (0, 10) and result.num_examples == len(train) > 0
    assert result.train_samples == 0 and np.isnan(result.train_loss)
    after = student.state_dict()
    np.testing.assert_array_equal(after["head.weight"].numpy(), weight)
    np.testing.assert_array_equal(after["head.bias"].numpy(), bias)
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("head."))
    small = Node(cfg=cfg, partition_id=1, role="drone", threads=1, name="drone")
    with pytest.raises(ValueError, match="does not fit"):
        fedkd_round(small, task, build_model("tiny", 3, 10), train, holdout, torch.zeros(0))
