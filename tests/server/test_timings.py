"""Where the time goes: the clocks of a round and of a run, and simulate's hand-over."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from common import keys
from common.config import RunConfig
from server.timings import (
    GROUND_SECONDS_FILE,
    Handover,
    Laps,
    RunClock,
    Sent,
    close,
    format_seconds,
    hand_over,
    run_clock,
    take_over,
)


def test_the_wait_for_replies_is_cut_at_the_last_reply_created() -> None:
    sent = Sent(perf=100.0, wall=1_000.0)
    # sent at wall 1000, replies created at 1002 and 1007, in hand 9 s after sending
    split = sent.split([1_002.0, 1_007.0], arrived=109.0)
    assert split == {keys.PHASE_CLIENTS: pytest.approx(7.0), keys.PHASE_RECEIVE: pytest.approx(2.0)}
    # no reply at all (every client timed out): the whole wait is the clients'
    assert sent.split([], arrived=104.0) == {keys.PHASE_CLIENTS: 4.0, keys.PHASE_RECEIVE: 0.0}
    # a client clock behind or ahead of the server's: the parts stay within the wait
    assert sent.split([990.0], arrived=103.0)[keys.PHASE_CLIENTS] == 0.0
    ahead = sent.split([1_050.0], arrived=103.0)
    assert ahead == {keys.PHASE_CLIENTS: 3.0, keys.PHASE_RECEIVE: 0.0}


def test_a_rounds_phases_add_up_to_its_total_with_other_and_total_last() -> None:
    started = time.perf_counter()
    phases: dict[str, float] = {keys.PHASE_SEND: 0.0}
    laps = Laps(phases)
    time.sleep(0.02)
    assert laps.lap(keys.PHASE_DISTIL) >= 0.02
    time.sleep(0.01)  # not timed: lands in "other"
    laps.restart()
    laps.lap(keys.PHASE_EVALUATE)
    total = close(phases, started)
    assert list(phases) == [
        keys.PHASE_SEND,
        keys.PHASE_DISTIL,
        keys.PHASE_EVALUATE,
        keys.PHASE_OTHER,
        keys.PHASE_TOTAL,
    ]
    assert phases[keys.PHASE_TOTAL] == total >= 0.03
    assert phases[keys.PHASE_OTHER] >= 0.01
    parts = sum(v for k, v in phases.items() if k != keys.PHASE_TOTAL)
    assert parts == pytest.approx(total)
    laps.lap(keys.PHASE_CHECKPOINT)  # a phase after closing: closing again keeps the order
    close(phases, started)
    assert list(phases)[-3:] == [keys.PHASE_CHECKPOINT, keys.PHASE_OTHER, keys.PHASE_TOTAL]


def test_the_run_clock_reports_every_phase_the_rounds_the_rest_and_the_total() -> None:
    clock = RunClock(started=time.time() - 100.0, phases={"data": 10.0, "teacher": 30.0})
    clock.add(keys.PHASE_SETUP, 5.0)
    report = clock.report(rounds_seconds=50.0)
    assert list(report) == [
        "data",
        "teacher",
        keys.PHASE_SETUP,
        keys.PHASE_ROUNDS,
        keys.PHASE_OTHER,
        keys.PHASE_TOTAL,
    ]
    assert report[keys.PHASE_TOTAL] == pytest.approx(100.0, abs=1.0)
    assert report[keys.PHASE_OTHER] == pytest.approx(5.0, abs=1.0)


def test_a_resumed_run_adds_the_sessions_before_it() -> None:
    earlier = RunClock(started=time.time() - 60.0, phases={"data": 10.0, "teacher": 30.0})
    checkpointed = earlier.report(rounds_seconds=15.0)  # as the checkpoint holds it
    clock = RunClock(started=time.time() - 20.0, phases={"data": 2.0, "teacher": 1.0})
    clock.add_earlier(checkpointed)
    report = clock.report(rounds_seconds=25.0)  # every round of both sessions
    assert report["data"] == pytest.approx(12.0) and report["teacher"] == pytest.approx(31.0)
    assert report[keys.PHASE_ROUNDS] == 25.0
    assert report[keys.PHASE_TOTAL] == pytest.approx(80.0, abs=1.0)
    assert report[keys.PHASE_OTHER] == pytest.approx(80.0 - 12 - 31 - 25, abs=1.0)


def test_the_ground_measured_before_flower_stands_for_the_servers_cache_loads() -> None:
    ground = {"data": 1.5, "teacher": 0.5}  # the ServerApp found everything cached
    own = run_clock(started=2_000.0, ground=ground)
    assert own.started == 2_000.0 and own.phases == ground
    handover = Handover(started=1_000.0, ready=1_900.0, seconds={"data": 40.0, "teacher": 800.0})
    clock = run_clock(started=2_000.0, ground=ground, handover=handover)
    assert clock.started == 1_000.0  # the run began when simulate began
    assert clock.phases == {
        "data": 40.0,
        "teacher": 800.0,
        keys.PHASE_FLOWER_START: 100.0,
        keys.PHASE_SERVER_GROUND: 2.0,
    }
    assert format_seconds({"data": 40.0, "teacher": 0.123}) == "data 40.00 s, teacher 0.12 s"


def test_simulates_figures_reach_only_a_serverapp_of_the_same_run(tmp_path: Path) -> None:
    cfg = RunConfig(num_clients=3, out_dir=str(tmp_path))
    assert take_over(tmp_path, cfg) is None and take_over(None, cfg) is None  # nothing left
    hand_over(tmp_path, cfg, started=123.0, seconds={"data": 4.0, "preinstall-tiny": 2.5})
    got = take_over(tmp_path, cfg)
    assert got is not None and got.started == 123.0 and got.ready >= 123.0
    assert got.seconds == {"data": 4.0, "preinstall-tiny": 2.5}
    assert not (tmp_path / GROUND_SECONDS_FILE).exists()  # taken: a later run cannot reuse it
    hand_over(tmp_path, cfg, started=123.0, seconds={"data": 4.0})
    other = RunConfig(num_clients=4, out_dir=str(tmp_path))
    assert take_over(tmp_path, other) is None  # written for another run config
    (tmp_path / GROUND_SECONDS_FILE).write_text(json.dumps({"config": cfg.to_mapping()}))
    assert take_over(tmp_path, cfg) is None  # incomplete
    (tmp_path / GROUND_SECONDS_FILE).write_text("{not json")
    assert take_over(tmp_path, cfg) is None
