"""The server's work after a round: what goes in (a TrainedRound), what comes out (its record)."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Error, Message

from common import keys
from common.config import RunConfig
from common.errors import CodecError
from common.federation import load_federation
from server.checkpoint import load_checkpoint
from server.global_student import GLOBAL_STUDENT_FILE, GlobalStudent
from server.history import REPORT_FILE, History, RoundRecord, TrainedRound, finite_json
from server.knowledge import Knowledge
from server.rounds import ServerRound, refine_teacher
from server.strategy import FedKD
from tests.server.loopback import LoopbackGrid


def _after_round(fixture_data: Path, out_dir: Path | None) -> ServerRound:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3, batch_size=16)
    fed = load_federation(cfg)
    n = len(fed.partition.reference)
    teacher = np.eye(fed.num_classes, dtype=np.float32)[np.arange(n) % fed.num_classes]
    teacher = 0.8 * teacher + 0.2 / fed.num_classes
    strategy = FedKD(Knowledge(teacher, 0.5), seed=cfg.seed)
    history = History(config=cfg.to_mapping(), out_dir=out_dir)
    history.start_accuracy = 0.25
    student = GlobalStudent(fed, cfg)
    return ServerRound(cfg, fed, strategy, strategy.knowledge, student, history)


def _weights(student: GlobalStudent) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in student.model.state_dict().items()}


def test_a_round_distils_checkpoints_and_reports_a_new_record(
    fixture_data: Path, tmp_path: Path
) -> None:
    after = _after_round(fixture_data, tmp_path)
    before = _weights(after.student)
    handed = RoundRecord(round=1, clients_selected=3, clients_ok=2, bytes_up=100)
    handed.phase_seconds = {keys.PHASE_SEND: 0.01, keys.PHASE_CLIENTS: 0.02}
    started = time.perf_counter() - 0.05  # the client phase began 0.05 s ago
    record = after.run(TrainedRound(1, handed, started, server_update=True))

    assert record is not handed and math.isnan(handed.global_accuracy)  # the input stays
    assert handed.phase_seconds == {keys.PHASE_SEND: 0.01, keys.PHASE_CLIENTS: 0.02}
    assert (record.round, record.clients_ok, record.bytes_up) == (1, 2, 100)
    assert math.isfinite(record.distill_loss) and 0.0 <= record.global_accuracy <= 1.0
    assert record.global_accuracy == after.student.evaluate()
    assert 0.0 < record.train_seconds <= record.seconds
    changed = _weights(after.student)
    assert any(not torch.equal(before[k], changed[k]) for k in before)  # the student trained
    assert after.history.rounds == [record]
    # the record's phases, in the order they ran, add up to its seconds
    phases = record.phase_seconds
    assert list(phases) == [
        keys.PHASE_SEND,
        keys.PHASE_CLIENTS,
        keys.PHASE_DISTIL,
        keys.PHASE_EVALUATE,
        keys.PHASE_CHECKPOINT,
        keys.PHASE_OTHER,
        keys.PHASE_TOTAL,
    ]
    assert phases[keys.PHASE_TOTAL] == record.seconds
    assert sum(phases.values()) - record.seconds == pytest.approx(record.seconds)
    assert min(phases[k] for k in (keys.PHASE_DISTIL, keys.PHASE_CHECKPOINT)) > 0.0
    # the checkpoint holds the new round (written before the report, with the record passed)
    # as it was before the checkpoint was written: without its checkpoint seconds
    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.round == 1
    (saved,) = finite_json(ckpt.history["rounds"])
    whole = finite_json(asdict(record))  # NaN-safe
    assert {k: v for k, v in saved.items() if k not in ("seconds", "phase_seconds")} == {
        k: v for k, v in whole.items() if k not in ("seconds", "phase_seconds")
    }
    assert keys.PHASE_CHECKPOINT not in saved["phase_seconds"]
    assert saved["seconds"] == saved["phase_seconds"][keys.PHASE_TOTAL] < record.seconds
    for k, v in ckpt.student.items():
        torch.testing.assert_close(v, changed[k])
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert [r["round"] for r in report["rounds"]] == [1]

    second = after.run(TrainedRound(2, RoundRecord(round=2), time.perf_counter(), True))
    assert after.history.rounds == [record, second]
    ckpt = load_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.round == 2 and len(ckpt.history["rounds"]) == 2
    assert finite_json(ckpt.history["rounds"][0]) == whole  # the next one holds it whole
    run = report["phase_seconds"]  # the run's: its rounds' seconds so far
    assert run[keys.PHASE_ROUNDS] == pytest.approx(record.seconds)
    checkpointed = ckpt.history["phase_seconds"][keys.PHASE_ROUNDS]  # round 2 up to it
    assert checkpointed == pytest.approx(record.seconds + ckpt.history["rounds"][1]["seconds"])


def test_a_round_logs_where_its_seconds_went(
    fixture_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    after = _after_round(fixture_data, None)
    handed = RoundRecord(round=1, phase_seconds={keys.PHASE_SEND: 0.5})
    with caplog.at_level(logging.INFO, logger="server.history"):
        record = after.run(TrainedRound(1, handed, time.perf_counter() - 0.5, True))
    (line,) = [r.getMessage() for r in caplog.records if "seconds:" in r.getMessage()]
    assert line.startswith("round 1 seconds: send 0.50 s, distil ")
    assert f"total {record.seconds:.2f} s" in line and "checkpoint" not in line  # no out_dir


def test_a_round_without_a_server_update_keeps_the_student_and_its_accuracy(
    fixture_data: Path,
) -> None:
    after = _after_round(fixture_data, None)
    before = _weights(after.student)
    first = after.run(TrainedRound(1, RoundRecord(round=1), time.perf_counter(), False))
    assert first.global_accuracy == 0.25  # the start accuracy: no earlier round
    assert math.isnan(first.distill_loss)
    after.history.rounds[-1].global_accuracy = 0.4
    second = after.run(TrainedRound(2, RoundRecord(round=2), time.perf_counter(), False))
    assert second.global_accuracy == 0.4  # the previous round's
    for k, v in _weights(after.student).items():
        assert torch.equal(v, before[k])
    assert [r.round for r in after.history.rounds] == [1, 2]


def test_flower_calls_it_as_evaluate_fn_after_each_round(fixture_data: Path) -> None:
    after = _after_round(fixture_data, None)
    assert after(0, ArrayRecord()) is None  # Flower's evaluation before round 1
    assert after.history.rounds == []
    s = after.strategy
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1, 2])))
    s.aggregate_train(1, [Message(Error(code=1, reason="gone"), reply_to=m) for m in msgs])
    metrics = after(1, ArrayRecord())
    assert metrics is not None
    assert metrics["accuracy"] == after.history.rounds[-1].global_accuracy
    assert after.history.rounds[-1].clients_failed == 2


class _Refiner:
    """Stands in for TeacherRefiner: new soft labels, or a diverged step."""

    def __init__(self, labels: np.ndarray | None) -> None:
        self.labels = labels

    def refine(self, targets: np.ndarray, server_round: int) -> np.ndarray:
        if self.labels is None:
            raise CodecError("soft labels contain NaN or Inf")
        return self.labels

    def evaluate(self) -> float:
        return 0.7


def test_refining_the_teacher_replaces_its_labels_or_keeps_them_when_they_are_unusable() -> None:
    teacher = np.full((6, 3), 1 / 3, np.float32)
    knowledge = Knowledge(teacher, 0.5)
    assert refine_teacher(_Refiner(None), knowledge, 1) == 0.7  # type: ignore[arg-type]
    np.testing.assert_array_equal(knowledge.teacher, teacher)
    labels = np.eye(3, dtype=np.float32)[np.arange(6) % 3]
    assert refine_teacher(_Refiner(labels), knowledge, 2) == 0.7  # type: ignore[arg-type]
    np.testing.assert_array_equal(knowledge.teacher, labels)


def test_a_refined_round_records_the_teachers_accuracy(fixture_data: Path) -> None:
    after = _after_round(fixture_data, None)
    after.refiner = _Refiner(None)  # type: ignore[assignment]
    record = after.run(TrainedRound(1, RoundRecord(round=1), time.perf_counter(), True))
    assert record.teacher_accuracy == pytest.approx(0.7)
    skipped = after.run(TrainedRound(2, RoundRecord(round=2), time.perf_counter(), False))
    assert skipped.teacher_accuracy is None  # no update: the teacher was not refined


def test_the_global_student_is_saved_as_its_weights(fixture_data: Path, tmp_path: Path) -> None:
    after = _after_round(fixture_data, None)
    path = after.student.save(tmp_path)
    assert path == tmp_path / GLOBAL_STUDENT_FILE
    saved = torch.load(path, weights_only=True)
    for k, v in _weights(after.student).items():
        assert torch.equal(saved[k], v)
