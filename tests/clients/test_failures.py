"""Simulated dropout, stragglers and CPU share: deterministic, at the set rate, typed errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients.app import train
from clients.failures import DROPOUT_REASON, FailurePlan, Fate
from clients.trace import train_message
from common import keys
from common.config import RunConfig, role_values
from common.errors import ConfigError
from tests.clients.contexts import node_context

ROLES = ("satellite", "drone", "ground-station")


def _plan(**values: object) -> FailurePlan:
    return FailurePlan.from_config(RunConfig.from_mapping(values))


def test_defaults_are_off() -> None:
    plan = _plan()
    assert not plan.active
    fate = plan.fate("satellite", 3, 1)
    assert fate == Fate() and fate.idle_seconds(2.0) == 0.0


def test_dropout_is_deterministic_per_seed_partition_round() -> None:
    a, b = _plan(dropout="satellite=0.3", seed=5), _plan(dropout="satellite=0.3", seed=5)
    draws = [[a.drops("satellite", p, r) for p in range(200)] for r in range(1, 4)]
    assert draws == [[b.drops("satellite", p, r) for p in range(200)] for r in range(1, 4)]
    assert draws[0] != draws[1]  # another round, other clients
    other_seed = _plan(dropout="satellite=0.3", seed=6)
    assert draws[0] != [other_seed.drops("satellite", p, 1) for p in range(200)]


@pytest.mark.parametrize("p", [0.05, 0.3, 0.8])
def test_dropout_rate_matches_the_probability(p: float) -> None:
    plan = _plan(dropout=f"drone={p}")
    n = 20_000
    rate = np.mean([plan.drops("drone", k, 1 + k % 7) for k in range(n)])
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / n)  # four standard errors
    assert not any(plan.drops("satellite", k, 1) for k in range(1000))  # other roles: never


def test_one_value_applies_to_every_role_and_extremes() -> None:
    plan = _plan(**{"dropout": "1", "straggler-seconds": "0"})
    assert all(plan.drops(role, 7, 2) for role in ROLES)
    assert not any(_plan(dropout="0").drops(role, 7, 2) for role in ROLES)


def test_straggler_delay_and_cpu_share() -> None:
    plan = _plan(**{"straggler-seconds": "satellite=2.5", "cpu-share": "satellite=0.25,drone=3"})
    sat, drone, ground = (plan.fate(r, 1, 1) for r in ROLES)
    assert sat.threads == 1 and sat.idle_seconds(1.0) == pytest.approx(2.5 + 3.0)
    assert drone.threads == 3 and drone.idle_seconds(1.0) == 0.0
    assert ground.threads is None and ground.idle_seconds(1.0) == 0.0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("dropout", "satellite=1.5", r"dropout: satellite=1.5 is outside \[0, 1\]"),
        ("dropout", "balloon=0.1", "dropout: unknown role 'balloon'"),
        ("dropout", "satellite=often", "'often' for satellite is not a number"),
        ("dropout", "satellite", "not a number"),
        ("dropout", "satellite=0.1,satellite=0.2", "given twice"),
        ("dropout", "satellite=0.1,0.2", "'0.2' is not ROLE=VALUE"),
        ("straggler-seconds", "drone=-1", r"drone=-1 is outside \[0, inf\]"),
        ("straggler-seconds", "drone=nan", "outside"),
        ("cpu-share", "drone=0", r"cpu-share: drone=0 is outside \(0, 64\]"),
        ("shard-size", -1, "shard-size"),
    ],
)
def test_bad_values_are_config_errors(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_mapping({key: value})


def test_role_values_parses_spaces() -> None:
    assert role_values(" satellite = 0.2 , drone=0.05 ", "dropout", ROLES, low=0.0, high=1.0) == {
        "satellite": 0.2,
        "drone": 0.05,
    }


def _train_message(server_round: int) -> Message:
    config = ConfigRecord({keys.SERVER_ROUND: server_round})
    return train_message(RecordDict({keys.TRAIN_CONFIG: config}), node_id=9)


def _context(partition_id: int, **run_config: object) -> Context:
    node = {keys.NODE_PARTITION_ID: partition_id, keys.NODE_NUM_PARTITIONS: 20}
    return node_context(RunConfig.from_mapping(run_config), node)


def test_a_dropped_client_replies_with_a_clear_error_without_training() -> None:
    started = time.perf_counter()
    reply = train(_train_message(3), _context(0, dropout="satellite=1", roles="satellite"))
    assert time.perf_counter() - started < 5  # it neither loaded data nor trained
    assert reply.has_error()
    assert reply.error.reason.startswith(f"{DROPOUT_REASON}: client 0 (satellite)")
    assert "round 3" in reply.error.reason
