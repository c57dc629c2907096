"""The server's work after each round: distil the global student from the round's knowledge,
refine the teacher, checkpoint, report, export the round's metrics; and after the last one.

:class:`ServerRound` runs it: Flower calls it as the strategy's ``evaluate_fn`` once a round's
client phase is over; :meth:`ServerRound.run` takes what that phase handed over
(:class:`server.history.TrainedRound`) and returns the round's completed record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from flwr.app import ArrayRecord, MetricRecord

from common import keys
from common.config import RunConfig
from common.errors import CodecError
from common.federation import Federation
from server import metrics
from server.checkpoint import snapshot
from server.global_student import GlobalStudent
from server.history import History, RoundRecord, TrainedRound
from server.knowledge import Knowledge
from server.plots import finish_report
from server.strategy import FedKD
from server.teacher import TeacherRefiner
from server.timings import Laps, close, format_seconds

log = logging.getLogger(__name__)


@dataclass
class ServerRound:
    """After each round: the global student (and the refined teacher) learn from the
    knowledge, the checkpoint and then the report are written, the metrics exported.

    ``strategy`` hands each round over (:meth:`FedKD.finished_round`) and is checkpointed
    with the rest; ``knowledge`` is its knowledge; ``history`` receives each round's record
    and, with an ``out_dir``, the checkpoint is written there before the report.
    """

    cfg: RunConfig
    fed: Federation
    strategy: FedKD
    knowledge: Knowledge
    student: GlobalStudent
    history: History
    refiner: TeacherRefiner | None = None

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Flower's ``evaluate_fn``: nothing before round 1, then the round's accuracy."""
        trained = self.strategy.finished_round(server_round)
        if trained is None:
            return None
        return MetricRecord({"accuracy": self.run(trained).global_accuracy})

    def run(self, trained: TrainedRound) -> RoundRecord:
        """Complete round ``trained.round``: a copy of its record with the server's part
        (global accuracy, distillation loss, refined teacher's accuracy, times) filled in, and
        checkpointed, added to the history and exported.

        Its ``phase_seconds`` gain ``distil``, ``evaluate``, ``refine`` and ``checkpoint``.
        The checkpoint holds the record as it was before the checkpoint was written (without
        ``checkpoint``, ``seconds`` up to it); the next round's checkpoint holds it whole."""
        record = replace(
            trained.record,
            train_seconds=time.perf_counter() - trained.started,
            phase_seconds=dict(trained.record.phase_seconds),
        )
        laps = Laps(record.phase_seconds)
        previous = self.history.rounds[-1].global_accuracy if self.history.rounds else None
        if not trained.server_update:
            # Nobody's knowledge arrived in this window: the global student stays as it was.
            record.global_accuracy = self.history.start_accuracy if previous is None else previous
        else:
            record.distill_loss = self.student.distil(self.knowledge.current, trained.round)
            record.distil_reused = self.student.last_reused
            laps.lap(keys.PHASE_DISTIL)
            record.global_accuracy = self.student.evaluate()
            laps.lap(keys.PHASE_EVALUATE)
            if self.refiner is not None:
                record.teacher_accuracy = refine_teacher(
                    self.refiner, self.knowledge, trained.round
                )
                laps.lap(keys.PHASE_REFINE)
        record.seconds = close(record.phase_seconds, trained.started)
        out_dir = self.history.out_dir
        if out_dir is not None:  # the checkpoint first: the report never runs ahead of it
            laps.restart()
            state = snapshot(
                self.cfg,
                self.fed,
                self.strategy,
                self.student,
                self.history,
                self.refiner,
                new_round=record,
            )
            state.save(out_dir)
            laps.lap(keys.PHASE_CHECKPOINT)
            record.seconds = close(record.phase_seconds, trained.started)
        self.history.add(record)
        metrics.observe_round(record, previous)
        return record

    def finish(self) -> Path | None:
        """After the last round: the global student's weights (in ``out_dir``, for
        benchmarks and deployment), the final report and its plot. Returns the report."""
        if self.history.out_dir is not None:
            self.student.save(self.history.out_dir)
        self.history.clock.lap(keys.PHASE_FINISH)  # since the clock's restart after the rounds
        path = finish_report(self.history)
        rounds = self.history.rounds
        final = rounds[-1].global_accuracy if rounds else float("nan")
        log.info("run finished: global-student accuracy %.4f, report %s", final, path)
        log.info("run seconds: %s", format_seconds(self.history.phase_seconds()))
        return path


def refine_teacher(refiner: TeacherRefiner, knowledge: Knowledge, server_round: int) -> float:
    """Refine the teacher towards K_t; its soft labels become the teacher part of K_t+1.
    Returns the refined teacher's test accuracy.

    A refinement that yields unusable soft labels (NaN after a diverged step) is logged and
    the previous teacher labels stay: the round and the run go on."""
    try:
        knowledge.set_teacher(refiner.refine(knowledge.current, server_round))
    except CodecError as exc:
        log.error(
            "round %d: the refined teacher's soft labels are unusable (%s); the teacher and "
            "its labels stay as before this round. Lower teacher-refine-lr or set "
            "teacher-refine-epochs = 0",
            server_round,
            exc,
        )
    return refiner.evaluate()
