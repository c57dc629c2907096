"""Server state after every completed round, so that a crashed server loses nothing.

A checkpoint holds what the next round depends on: the round number, the knowledge, the
global student and its optimiser, the client-sampling random state, the metric history (and
the run's seconds by phase so far) and, when the teacher is refined
(``teacher-refine-epochs``), the refined teacher and its optimiser.
It is written atomically (temp file, fsync, rename) with a format version, and only resumed
by a run whose config and data split are the same; otherwise the message names what differs.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.atomic import atomic_write
from common.class_stats import ClassStats
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import Federation
from server.global_student import GlobalStudent
from server.history import History, RoundRecord
from server.strategy import FedKD
from server.teacher import TeacherRefiner

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1
# Settings that may change between a crash and the resumption without changing the result.
NOT_COMPARED = frozenset(
    {
        "out-dir",
        "data-dir",
        "metrics-address",
        "metrics-linger",
        "round-timeout",
        "max-in-flight",
        "resume",
    }
)


def data_fingerprint(fed: Federation) -> str:
    """Hash of the labels and every part of the partition (the data split a run learns on)."""
    h = hashlib.sha256(np.asarray(fed.arrays.labels).tobytes())
    for part in fed.partition.all_parts():
        h.update(np.asarray(part, dtype=np.int64).tobytes())
    return h.hexdigest()[:20]


@dataclass
class Checkpoint:
    round: int
    config: dict[str, Any]
    data: str
    knowledge: np.ndarray
    student: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    sampler: tuple[Any, ...]  # random.Random state of the client sampling
    history: dict[str, Any]  # History fields: teacher/start accuracy, rounds as dicts
    teacher: dict[str, Any] | None = None  # the refined teacher and its optimiser, if refined
    # client name -> its class statistics as sent (client-statistics = 1)
    statistics: dict[str, dict[str, np.ndarray]] | None = None
    # every client's trust (server/trust.py TrustLedger.state), so a resumed run keeps it
    trust: dict[str, Any] | None = None

    def save(self, out_dir: Path) -> Path:
        blob = {"format_version": FORMAT_VERSION, **self.__dict__}
        return atomic_write(out_dir / CHECKPOINT_FILE, lambda fh: torch.save(blob, fh))

    def check_matches(self, cfg: RunConfig, fed: Federation) -> None:
        """Refuse to resume a run with other settings or another data split."""
        self.check_settings(cfg)
        self.check_data(fed)

    def check_data(self, fed: Federation) -> None:
        """Refuse to resume a run on another data split."""
        if self.data != data_fingerprint(fed):
            raise ConfigError(
                "the checkpoint was written on another data split (the data folder or its "
                "manifest changed): resume on the same data or start a new run"
            )

    def check_settings(self, cfg: RunConfig) -> None:
        """Refuse to resume a run with other settings: what :meth:`check_matches` checks
        without the data, so a resume can be refused before the tiles are decoded."""
        now = {k: v for k, v in cfg.to_mapping().items() if k not in NOT_COMPARED}
        # A key the checkpoint's version did not know yet had its default value then.
        defaults = RunConfig().to_mapping()
        then = {k: v for k, v in {**defaults, **self.config}.items() if k not in NOT_COMPARED}
        differ = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        if differ:
            listed = ", ".join(f"{k}={then.get(k)!r} (now {now.get(k)!r})" for k in differ)
            raise ConfigError(
                f"the checkpoint was written by a run with other settings: {listed}; resume "
                "with the same run config or start a new run in another folder"
            )


def load_checkpoint(out_dir: Path) -> Checkpoint | None:
    """The checkpoint in ``out_dir``, or None if there is none yet."""
    path = out_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, weights_only=False)  # our own file, written atomically
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"checkpoint {path} is unreadable ({exc}): start a new run") from exc
    version = blob.get("format_version") if isinstance(blob, dict) else None
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"checkpoint {path} has format version {version!r}; this skydistill reads "
            f"version {FORMAT_VERSION}: finish it with the version that wrote it"
        )
    fields = {k: v for k, v in blob.items() if k != "format_version"}
    try:
        return Checkpoint(**fields)
    except TypeError as exc:
        raise ConfigError(f"checkpoint {path} is incomplete ({exc}): start a new run") from exc


def snapshot(
    cfg: RunConfig,
    fed: Federation,
    strategy: FedKD,
    student: GlobalStudent,
    history: History,
    refiner: TeacherRefiner | None = None,
    *,
    new_round: RoundRecord | None = None,
) -> Checkpoint:
    """The state after the last round in ``history``, or after ``new_round`` when that round
    is done but not in ``history`` yet (the checkpoint is written before the report)."""
    rounds = [*history.rounds, *([] if new_round is None else [new_round])]
    return Checkpoint(
        round=len(rounds),
        config=cfg.to_mapping(),
        data=data_fingerprint(fed),
        knowledge=strategy.knowledge.targets.copy(),
        student={k: v.detach().clone() for k, v in student.model.state_dict().items()},
        optimizer=student.optimizer.state_dict(),
        sampler=strategy.sampler_state,
        history={
            "teacher_accuracy": history.teacher_accuracy,
            "start_accuracy": history.start_accuracy,
            "rounds": [r.__dict__.copy() for r in rounds],
            # the run's phases so far (report.json's phase_seconds): a resumption adds them
            "phase_seconds": history.phase_seconds(rounds),
        },
        teacher=refiner.state() if refiner is not None else None,
        statistics=(
            {name: st.to_arrays() for name, st in strategy.statistics.clients.items()}
            if strategy.statistics is not None
            else None
        ),
        trust=strategy.defence.ledger.state(),
    )


def resume(
    cfg: RunConfig,
    fed: Federation,
    strategy: FedKD,
    student: GlobalStudent,
    history: History,
    refiner: TeacherRefiner | None = None,
) -> int:
    """With ``resume`` set, continue from the checkpoint in ``out-dir`` if there is one
    (refused if it was written with other settings or on another data split). Returns the
    number of rounds left to run (0: every round was completed already)."""
    checkpoint = load_checkpoint(Path(cfg.out_dir)) if cfg.resume and cfg.out_dir else None
    if checkpoint is not None:
        checkpoint.check_matches(cfg, fed)
        restore(checkpoint, strategy, student, history, refiner)
    remaining = cfg.num_rounds - strategy.round_offset
    if remaining <= 0:
        log.info("all %d rounds were already completed: nothing to resume", cfg.num_rounds)
    return max(remaining, 0)


def restore(
    ckpt: Checkpoint,
    strategy: FedKD,
    student: GlobalStudent,
    history: History,
    refiner: TeacherRefiner | None = None,
) -> None:
    """Put the server back where the checkpoint left it."""
    if ckpt.knowledge.shape != strategy.knowledge.targets.shape:
        raise ConfigError(
            f"the checkpoint's knowledge has shape {ckpt.knowledge.shape}, this run's "
            f"{strategy.knowledge.targets.shape}: start a new run"
        )
    strategy.knowledge.targets[...] = ckpt.knowledge
    strategy.restore(ckpt.round, ckpt.sampler)
    student.model.load_state_dict(ckpt.student)
    student.optimizer.load_state_dict(ckpt.optimizer)
    if refiner is not None and ckpt.teacher is not None:
        refiner.load_state(ckpt.teacher)
        strategy.knowledge.set_teacher(refiner.soft_labels())
    strategy.defence.restore(ckpt.trust)
    if strategy.statistics is not None and ckpt.statistics:
        pooled = strategy.statistics
        for name, arrays in ckpt.statistics.items():
            pooled.add(
                name, ClassStats.from_arrays(arrays, pooled.archive.num_classes, pooled.archive.dim)
            )
        strategy.defence.reweigh(pooled)  # the history rule's weights, before the fusion
        strategy.fuse_statistics()
    history.teacher_accuracy = float(ckpt.history["teacher_accuracy"])
    history.start_accuracy = float(ckpt.history["start_accuracy"])
    history.rounds = [RoundRecord(**r) for r in ckpt.history["rounds"]]
    history.clock.add_earlier(ckpt.history.get("phase_seconds") or {})
    log.info("resuming after round %d from the checkpoint", ckpt.round)
