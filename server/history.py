"""Per-round records of a run and the ``report.json`` other tools read."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import atomic_write
from server.timings import RunClock, format_seconds

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"


@dataclass
class RoundRecord:
    round: int
    global_accuracy: float = float("nan")
    client_accuracy: dict[str, float] = field(default_factory=dict)
    # Clients' own students on the common test split (rounds with client evaluation only).
    client_test_accuracy: dict[str, float] = field(default_factory=dict)
    client_test_accuracy_mean: float | None = None
    clients_selected: int = 0
    clients_ok: int = 0
    clients_failed: int = 0
    clients_rejected: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    bytes_up: int = 0
    bytes_down: int = 0
    distill_loss: float = float("nan")
    # The global student's update came from a benchmark's distil cache (server/distil_cache.py):
    # ``distil`` then timed loading it, not computing it.
    distil_reused: bool = False
    teacher_agreement: float = float("nan")
    # The refined teacher on the test split after this round (teacher-refine-epochs > 0).
    teacher_accuracy: float | None = None
    # Wall seconds of the whole round: from configure_train to its checkpoint written.
    seconds: float = 0.0
    # ... by phase (common/keys.py PHASE_*, in the order they happen; they add up to
    # ``seconds``): send, clients, receive, aggregate, client-evaluate, distil, evaluate,
    # refine, checkpoint, other, total. Only the phases the round had.
    phase_seconds: dict[str, float] = field(default_factory=dict)
    # Fleet scenarios: simulated hours at the end of the round, and replies that arrived in a
    # later contact (held, then accepted down-weighted or dropped as too old).
    simulated_hours: float | None = None
    replies_held: int = 0
    stale_accepted: int = 0
    stale_dropped: int = 0
    # configure_train to the end of aggregate_train: the clients' phase of the round (no
    # server-side distillation or evaluation); what ``skydistill bench scale`` compares.
    train_seconds: float = 0.0
    # What the clients' work cost, summed over this round's valid replies: samples through a
    # training step, and the seconds of their train functions.
    client_train_samples: int = 0
    client_seconds: float = 0.0
    # ... the longest of those train functions: the busiest client's own seconds.
    client_seconds_max: float = 0.0
    # What each reply carried: records and array shapes (audit that only soft labels travel).
    replies: list[dict[str, Any]] = field(default_factory=list)
    # Clients' trust after the round (server/trust.py TrustLedger.summary): threshold, how
    # many are known and under it, lowest and median, the flagged keys, the scored clients'.
    trust: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainedRound:
    """What a round's client phase hands the server's work after it (server/rounds.py)."""

    round: int  # the run's round number (Flower's, plus rounds done before a resumption)
    record: RoundRecord  # what configure_train, aggregate_train and client evaluation counted
    started: float  # time.perf_counter() when configure_train began
    server_update: bool  # do the server's models train on the knowledge after this round?


@dataclass
class History:
    """Everything a run reports; written to ``out_dir/report.json`` after every round."""

    config: dict[str, Any]
    out_dir: Path | None
    teacher_accuracy: float = float("nan")
    start_accuracy: float = float("nan")  # global student before round 1
    rounds: list[RoundRecord] = field(default_factory=list)
    clock: RunClock = field(default_factory=RunClock)  # the run's phases (ground, setup, ...)

    def add(self, record: RoundRecord) -> None:
        self.rounds.append(record)
        log.info(
            "round %d: accuracy %.4f | clients ok %d failed %d rejected %d | "
            "bytes up %d down %d | %.1f s",
            record.round,
            record.global_accuracy,
            record.clients_ok,
            record.clients_failed,
            record.clients_rejected,
            record.bytes_up,
            record.bytes_down,
            record.seconds,
        )
        if record.phase_seconds:
            log.info("round %d seconds: %s", record.round, format_seconds(record.phase_seconds))
        self.write()

    def phase_seconds(self, rounds: list[RoundRecord] | None = None) -> dict[str, float]:
        """The run's wall seconds by phase until now, with the seconds of ``rounds`` (default:
        the rounds in the history) as ``rounds``."""
        done = self.rounds if rounds is None else rounds
        return self.clock.report(sum(r.seconds for r in done))

    def to_dict(self) -> dict[str, Any]:
        last = self.rounds[-1] if self.rounds else None
        return {
            "config": self.config,
            "phase_seconds": self.phase_seconds(),
            "rounds": [asdict(r) for r in self.rounds],
            "final": {
                "global_accuracy": last.global_accuracy if last else None,
                "seconds": sum(r.seconds for r in self.rounds),
                "teacher_accuracy": self.teacher_accuracy,
                "global_accuracy_start": self.start_accuracy,
                "rounds_completed": len(self.rounds),
                "bytes_up": sum(r.bytes_up for r in self.rounds),
                "bytes_down": sum(r.bytes_down for r in self.rounds),
            },
        }

    def write(self) -> Path | None:
        """Write the report atomically (temp file, fsync, rename)."""
        if self.out_dir is None:
            return None
        text = json.dumps(finite_json(self.to_dict()), indent=2).encode()
        path = atomic_write(self.out_dir / REPORT_FILE, lambda fh: fh.write(text))
        return path


def finite_json(value: Any) -> Any:
    """JSON has no NaN: turn non-finite floats into null."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value
