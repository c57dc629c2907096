"""Integration: the small fleet scenario through a real SuperLink and Ray, contact-aware."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import RunConfig
from common.fleet.contacts import contact_plan
from common.fleet.scenario import load_scenario
from simulations.simulate import simulate

pytestmark = pytest.mark.integration  # starts real processes


def test_contact_aware_rounds_follow_the_contact_plan(fixture_data: Path, tmp_path: Path) -> None:
    cfg = RunConfig(
        data_dir=str(fixture_data),
        scenario="small",
        num_clients=7,
        num_rounds=3,
        fraction_train=1.0,
        reference_per_round=8,
        teacher_epochs=1,  # one epoch per ground model: the other integration tests' cache
        global_pretrain_epochs=1,
        preinstall_epochs=1,
        metrics_address="",
        metrics_linger=0.0,
        round_window_minutes=60.0,
    )
    report = simulate(cfg, tmp_path / "run", progress=False)
    rounds = report["rounds"]
    assert [r["simulated_hours"] for r in rounds] == [1.0, 2.0, 3.0]
    plan = contact_plan(load_scenario("small"), payload_bytes=8 * 28)
    for r in rounds:
        start = r["simulated_hours"] - 1.0
        in_contact = [
            c for c in range(7) if plan.next_contact(c, start, before=start + 1.0) is not None
        ]
        # only clients in contact may get work (the station, client 6, always is)
        assert 1 <= r["clients_selected"] <= len(in_contact)
        assert r["clients_failed"] == 0
        assert r["clients_ok"] == r["clients_selected"]
        assert {x["role"] for x in r["replies"]} <= {"satellite", "drone", "ground-station"}
    # the ground station answers within its window every round, so knowledge always moves
    assert all(0.0 <= r["global_accuracy"] <= 1.0 for r in rounds)
    assert "ground-station" in rounds[0]["client_accuracy"]
