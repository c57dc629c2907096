"""Checkpoints: a faithful round trip, and refusals that say what differs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from common import keys
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import load_federation
from server.checkpoint import CHECKPOINT_FILE, load_checkpoint, restore, resume, snapshot
from server.global_student import GlobalStudent
from server.history import History, RoundRecord
from server.knowledge import Knowledge
from server.strategy import FedKD
from server.teacher import TeacherRefiner, load_or_train_teacher
from server.timings import RunClock


def _server(cfg: RunConfig) -> tuple[FedKD, GlobalStudent, History]:
    fed = load_federation(cfg)
    n = len(fed.partition.reference)
    teacher = np.full((n, fed.num_classes), 1.0 / fed.num_classes, np.float32)
    strategy = FedKD(Knowledge(teacher, 0.5), seed=cfg.seed)
    return strategy, GlobalStudent(fed, cfg), History(config=cfg.to_mapping(), out_dir=None)


def test_round_trip_restores_every_piece_of_state(fixture_data: Path, tmp_path: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    strategy, student, history = _server(cfg)
    strategy.knowledge.targets[3] = np.eye(fed.num_classes, dtype=np.float32)[2]
    strategy._rng.random()  # the sampler has moved on
    history.teacher_accuracy, history.start_accuracy = 0.7, 0.6
    history.rounds = [
        RoundRecord(
            round=1,
            global_accuracy=0.61,
            bytes_up=10,
            rejections={"codec": 1},
            distill_loss=0.3,
            teacher_agreement=0.9,
        )
    ]
    student.optimizer.step()  # optimiser state exists
    strategy.defence.ledger.observe(1, {"drone-1": 0.2, "satellite-0": 0.9})  # trust so far
    snapshot(cfg, fed, strategy, student, history).save(tmp_path)

    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.round == 1
    ckpt.check_matches(RunConfig(**{**cfg.__dict__, "out_dir": "/elsewhere"}), fed)
    s2, st2, h2 = _server(cfg)
    restore(ckpt, s2, st2, h2)
    np.testing.assert_array_equal(s2.knowledge.targets, strategy.knowledge.targets)
    assert s2.round_offset == 1 and s2._rng.random() == strategy._rng.random()
    for k, v in student.model.state_dict().items():
        torch.testing.assert_close(st2.model.state_dict()[k], v)
    assert h2.rounds == history.rounds and h2.teacher_accuracy == 0.7
    assert s2.defence.ledger.clients == strategy.defence.ledger.clients
    assert s2.defence.ledger.flagged == ["drone-1"]


def test_another_config_or_version_is_refused_with_the_reason(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    strategy, student, history = _server(cfg)
    snapshot(cfg, fed, strategy, student, history).save(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None
    with pytest.raises(ConfigError, match=r"num-rounds=10 \(now 12\)"):
        ckpt.check_matches(RunConfig(**{**cfg.__dict__, "num_rounds": 12}), fed)
    with pytest.raises(ConfigError, match=r"num-rounds=10 \(now 12\)"):  # without the data
        ckpt.check_settings(RunConfig(**{**cfg.__dict__, "num_rounds": 12}))
    ckpt.check_settings(cfg)
    ckpt.data = "another split"
    with pytest.raises(ConfigError, match="another data split"):
        ckpt.check_matches(cfg, fed)

    blob = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    blob["format_version"] = 99
    torch.save(blob, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(ConfigError, match="format version 99"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x00truncated")
    with pytest.raises(ConfigError, match="unreadable"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "empty") is None


def test_a_refined_teacher_is_checkpointed_and_restored(fixture_data: Path, tmp_path: Path) -> None:
    cfg = RunConfig(
        data_dir=str(fixture_data), num_clients=3, teacher_epochs=1, teacher_refine_epochs=1
    )
    fed = load_federation(cfg)

    def refiner() -> TeacherRefiner:
        teacher, _ = load_or_train_teacher(cfg, fed)
        reference = fed.reference_images(np.arange(len(fed.partition.reference)))
        return TeacherRefiner(
            teacher, cfg, fed.split(fed.partition.archive), reference, fed.test_split()
        )

    strategy, student, history = _server(cfg)
    ref = refiner()
    strategy.knowledge.set_teacher(ref.refine(strategy.knowledge.targets, 1))
    snapshot(cfg, fed, strategy, student, history, ref).save(tmp_path)

    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.teacher is not None
    s2, st2, h2 = _server(cfg)
    ref2 = refiner()  # the cached teacher, as a restarted server loads it
    assert not np.allclose(ref2.soft_labels(), ref.soft_labels(), atol=1e-6)
    restore(ckpt, s2, st2, h2, ref2)
    np.testing.assert_allclose(ref2.soft_labels(), ref.soft_labels(), atol=1e-6)
    np.testing.assert_allclose(s2.knowledge.teacher, strategy.knowledge.teacher, atol=1e-6)


def test_a_key_newer_than_the_checkpoint_counts_as_its_default(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    ckpt = snapshot(cfg, fed, *_server(cfg))
    del ckpt.config["teacher-refine-epochs"]  # written before the key existed
    ckpt.check_matches(cfg, fed)
    with pytest.raises(ConfigError, match=r"teacher-refine-epochs=0 \(now 1\)"):
        ckpt.check_matches(RunConfig(**{**cfg.__dict__, "teacher_refine_epochs": 1}), fed)


def test_a_new_round_is_checkpointed_without_entering_the_history_first(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    strategy, student, history = _server(cfg)
    history.rounds = [RoundRecord(1, global_accuracy=0.5, distill_loss=0.2, teacher_agreement=0.9)]
    new = RoundRecord(round=2, global_accuracy=0.55, distill_loss=0.1, teacher_agreement=0.8)
    snapshot(cfg, fed, strategy, student, history, new_round=new).save(tmp_path)
    assert [r.round for r in history.rounds] == [1]  # the history is left as it was
    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.round == 2
    s2, st2, h2 = _server(cfg)
    restore(ckpt, s2, st2, h2)
    assert h2.rounds == [history.rounds[0], new] and s2.round_offset == 2


def test_resume_continues_after_the_checkpoint_and_says_how_many_rounds_are_left(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3, num_rounds=3, out_dir=str(tmp_path))
    fed = load_federation(cfg)
    strategy, student, history = _server(cfg)
    assert resume(cfg, fed, strategy, student, history) == 3  # resume = 0: a new run
    history.rounds = [RoundRecord(r, global_accuracy=0.5, teacher_agreement=0.9) for r in (1, 2)]
    snapshot(cfg, fed, strategy, student, history).save(tmp_path)
    again = RunConfig(**{**cfg.__dict__, "resume": 1})
    s2, st2, h2 = _server(again)
    assert resume(again, fed, s2, st2, h2) == 1 and s2.round_offset == 2
    assert len(h2.rounds) == 2
    history.rounds.append(RoundRecord(3, global_accuracy=0.5, teacher_agreement=0.9))
    snapshot(cfg, fed, strategy, student, history).save(tmp_path)
    s3, st3, h3 = _server(again)
    assert resume(again, fed, s3, st3, h3) == 0  # every round done already


def test_a_resumed_run_keeps_the_seconds_of_the_sessions_before_it(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    strategy, student, history = _server(cfg)
    history.clock = RunClock(started=time.time() - 50.0, phases={"data": 20.0, "teacher": 9.0})
    history.rounds = [RoundRecord(1, seconds=12.0, phase_seconds={keys.PHASE_TOTAL: 12.0})]
    snapshot(cfg, fed, strategy, student, history).save(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None
    s2, st2, h2 = _server(cfg)
    h2.clock = RunClock(started=time.time() - 5.0, phases={"data": 1.0, "teacher": 0.5})
    restore(ckpt, s2, st2, h2)
    assert h2.rounds[0].phase_seconds == {keys.PHASE_TOTAL: 12.0}
    run = h2.to_dict()["phase_seconds"]
    assert (run["data"], run["teacher"], run[keys.PHASE_ROUNDS]) == (21.0, 9.5, 12.0)
    assert run[keys.PHASE_TOTAL] == pytest.approx(55.0, abs=1.0)  # both sessions
    del ckpt.history["phase_seconds"]  # a checkpoint written before the run was timed
    s3, st3, h3 = _server(cfg)
    restore(ckpt, s3, st3, h3)
    assert h3.clock.earlier_total == 0.0 and h3.rounds[0].seconds == 12.0
