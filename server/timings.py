"""Where a run's time goes: the wall seconds of each phase, per round and for the whole run.

A round's phases (``RoundRecord.phase_seconds``) are timed with ``time.perf_counter`` in the
ServerApp's hooks and add up to the round's ``seconds`` (``other`` is the rest). The clients'
part is seen from the server: from the train messages handed to Flower to the replies in hand,
split at the creation time of the last reply (stamped by Flower on the client) into ``clients``
and ``receive`` (Flower pulling the replies from the SuperLink). The run's phases
(:class:`RunClock`) are the ground segment's preparation, the ServerApp's setup, the rounds
and the rest, summed over the sessions of a resumed run.

``skydistill simulate`` prepares the ground before Flower starts; it hands its figures to the
ServerApp in ``OUT/ground-seconds.json`` (:func:`hand_over`, :func:`take_over`), so that the
report shows where the models were trained, not only the ServerApp's loading them again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flwr.app import Message

from common import keys
from common.atomic import atomic_write
from common.config import RunConfig

log = logging.getLogger(__name__)

GROUND_SECONDS_FILE = "ground-seconds.json"
_CLOSING = (keys.PHASE_OTHER, keys.PHASE_TOTAL)


@dataclass(frozen=True)
class Sent:
    """When a round's train messages were handed to Flower, on both clocks: ``perf`` for
    durations in this process, ``wall`` (Unix time) to compare with the replies' stamps."""

    perf: float
    wall: float

    @classmethod
    def now(cls) -> Sent:
        return cls(time.perf_counter(), time.time())

    def split(self, created: Iterable[float], arrived: float) -> dict[str, float]:
        """The wait from sending until ``arrived`` (``perf_counter``), cut at the latest reply
        creation time in ``created`` (Unix time): the clients' work and the receipt. Without
        replies (all timed out) the whole wait is the clients'. The cut is as good as the
        clients' clocks (exact in a simulation; the sum is exact in any case)."""
        waited = max(0.0, arrived - self.perf)
        last = max(created, default=None)
        clients = waited if last is None else min(max(0.0, last - self.wall), waited)
        return {keys.PHASE_CLIENTS: clients, keys.PHASE_RECEIVE: waited - clients}


def mark_sent(phases: dict[str, float], round_started: float) -> Sent:
    """The round's messages go to Flower now: ``send`` is the time since ``round_started``."""
    sent = Sent.now()
    phases[keys.PHASE_SEND] = sent.perf - round_started
    return sent


@contextmanager
def receiving(phases: dict[str, float], sent: Sent, replies: list[Message]) -> Iterator[None]:
    """Time a round's aggregation of ``replies`` (entered as they arrive): the wait since
    ``sent``, split into ``clients`` and ``receive`` (:meth:`Sent.split`), then ``aggregate``
    for the body, however it ends."""
    arrived = time.perf_counter()
    phases.update(sent.split((m.metadata.created_at for m in replies), arrived))
    try:
        yield
    finally:
        phases[keys.PHASE_AGGREGATE] = time.perf_counter() - arrived


def close(phases: dict[str, float], started: float) -> float:
    """Put ``other`` (what the timed phases leave of the time since ``started``, a
    ``perf_counter``) and ``total`` last in ``phases``; returns the total."""
    total = time.perf_counter() - started
    for key in _CLOSING:
        phases.pop(key, None)
    phases[keys.PHASE_OTHER] = max(0.0, total - sum(phases.values()))
    phases[keys.PHASE_TOTAL] = total
    return total


class Laps:
    """Time consecutive phases into ``phases``: each :meth:`lap` adds the seconds since the
    previous one (or since the start) under its name."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases
        self.mark = time.perf_counter()

    def restart(self) -> None:
        """Start the next phase now (what passed since the last lap belongs to none)."""
        self.mark = time.perf_counter()

    def lap(self, phase: str) -> float:
        now = time.perf_counter()
        seconds = now - self.mark
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds
        self.mark = now
        return seconds


@dataclass
class RunClock:
    """The run's wall seconds by phase (``report.json``'s top-level ``phase_seconds``).

    ``started`` is the Unix time this session began (under ``skydistill simulate``: when the
    command started preparing the ground); ``phases`` what was measured once per session (the
    ground's steps, ``flower-start``, ``server-ground``, ``setup``, ``finish``). A resumed run
    adds the sessions before it (:meth:`add_earlier`, from the checkpoint)."""

    started: float = field(default_factory=time.time)
    phases: dict[str, float] = field(default_factory=dict)
    earlier_total: float = 0.0
    mark: float = field(default_factory=time.time)  # where the next :meth:`lap` starts

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    def restart(self) -> None:
        """Start the next :meth:`lap` now."""
        self.mark = time.time()

    def lap(self, phase: str) -> None:
        """Add the seconds since the clock was made (or the last lap or restart) under
        ``phase``."""
        now = time.time()
        self.add(phase, now - self.mark)
        self.mark = now

    def report(self, rounds_seconds: float) -> dict[str, float]:
        """Every phase so far, ``rounds`` (the rounds' seconds, summed), ``other`` (the rest:
        between the rounds, the report writes) and ``total`` (all sessions, until now)."""
        total = self.earlier_total + time.time() - self.started
        parts = {**self.phases, keys.PHASE_ROUNDS: rounds_seconds}
        other = max(0.0, total - sum(parts.values()))
        return {**parts, keys.PHASE_OTHER: other, keys.PHASE_TOTAL: total}

    def add_earlier(self, earlier: Mapping[str, Any]) -> None:
        """Add what the sessions before a resumption spent (their report as checkpointed):
        their phases to this session's, their total to this run's."""
        for phase, seconds in earlier.items():
            if phase not in (keys.PHASE_ROUNDS, *_CLOSING) and isinstance(seconds, int | float):
                self.add(phase, float(seconds))
        total = earlier.get(keys.PHASE_TOTAL, 0.0)
        self.earlier_total += float(total) if isinstance(total, int | float) else 0.0


def run_clock(
    started: float, ground: Mapping[str, float], handover: Handover | None = None
) -> RunClock:
    """The clock of a ServerApp that began at ``started`` (Unix time) and has prepared its
    ground segment (``ground``: ``GroundSegment.seconds``), made once that is done.

    With a ``handover`` (``skydistill simulate`` prepared the ground before Flower started)
    the run began there: its ground phases are the ones measured there, then come
    ``flower-start`` (from then until this ServerApp began) and ``server-ground`` (this
    ServerApp loading the ground again, from the cache)."""
    if handover is None:
        return RunClock(started, dict(ground))
    phases = {
        **handover.seconds,
        keys.PHASE_FLOWER_START: max(0.0, started - handover.ready),
        keys.PHASE_SERVER_GROUND: sum(ground.values()),
    }
    return RunClock(handover.started, phases)


def format_seconds(phases: Mapping[str, float]) -> str:
    """``send 0.02 s, clients 11.84 s, ...``: one phase after the other, as they happened."""
    return ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in phases.items())


@dataclass(frozen=True)
class Handover:
    """What ``skydistill simulate`` measured before Flower started (:func:`hand_over`)."""

    started: float  # Unix time the command began preparing the ground
    ready: float  # Unix time the ground was ready
    seconds: dict[str, float]  # GroundSegment.seconds as measured there


def _comparable(cfg: RunConfig) -> Any:
    return json.loads(json.dumps(cfg.to_mapping()))  # as it reads back


def hand_over(out_dir: Path, cfg: RunConfig, started: float, seconds: Mapping[str, float]) -> Path:
    """Leave the ground's figures measured here (``skydistill simulate``) for the ServerApp
    of the run in ``out_dir``; only a ServerApp with the same run config takes them."""
    blob = {
        "config": _comparable(cfg),
        "started": started,
        "ready": time.time(),
        "seconds": dict(seconds),
    }
    text = json.dumps(blob, indent=2).encode()
    return atomic_write(out_dir / GROUND_SECONDS_FILE, lambda fh: fh.write(text))


def take_over(out_dir: Path | None, cfg: RunConfig) -> Handover | None:
    """The figures :func:`hand_over` left for this run in ``out_dir`` (the file is removed:
    they are this run's alone), or None: no file, unreadable, or another run config."""
    if out_dir is None:
        return None
    path = out_dir / GROUND_SECONDS_FILE
    try:
        blob = json.loads(path.read_text())
        path.unlink()
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("ignoring %s (%s): the report times the ServerApp's ground only", path, exc)
        return None
    if not isinstance(blob, dict) or blob.get("config") != _comparable(cfg):
        log.warning("ignoring %s: written for another run config", path)
        return None
    try:
        seconds = {str(k): float(v) for k, v in blob["seconds"].items()}
        return Handover(float(blob["started"]), float(blob["ready"]), seconds)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("ignoring %s (incomplete: %s)", path, exc)
        return None
