"""Contact-aware and synchronous schedules on hand-made contact plans (hours)."""

from __future__ import annotations

import pytest

from common.fleet.schedule import ALWAYS, ContactAwareSchedule, ContactPlan, SynchronousSchedule

# client 0: a ground station; 1: back in contact 2.5 h later; 2: only 10 h later; 3: never
WINDOWS = [list(ALWAYS), [(0.1, 0.2), (2.5, 2.6)], [(0.1, 0.2), (10.0, 10.1)], []]
TRAIN = 0.25  # hours between receiving work and having a reply


def _aware(**kw: object) -> ContactAwareSchedule[str]:
    args: dict[str, object] = {
        "window_hours": 1.0,
        "max_clients": 10,
        "max_staleness": 2,
        "decay": 0.5,
        "train_hours": TRAIN,
    }
    return ContactAwareSchedule(ContactPlan(WINDOWS), **{**args, **kw})  # type: ignore[arg-type]


def test_next_contact_respects_windows_and_link_budget() -> None:
    plan = ContactPlan(WINDOWS, transfer_hours=[0.0, 0.05, 0.5, 0.0])
    assert plan.next_contact(0, 7.3) == 7.3
    assert plan.next_contact(1, 0.0) == 0.1
    assert plan.next_contact(1, 0.12) == 0.12
    assert plan.next_contact(1, 0.17) == 2.5  # 0.03 h left in the pass: too short for 0.05 h
    assert plan.next_contact(1, 0.0, before=0.05) is None
    assert plan.next_contact(2, 0.0) is None  # 0.1 h passes never carry 0.5 h of payload
    assert plan.next_contact(3, 0.0) is None


def test_only_clients_in_contact_get_work_and_late_replies_are_held() -> None:
    s = _aware()
    first = s.plan_round(1)
    assert (first.start, first.end, first.clients) == (0.0, 1.0, (0, 1, 2))
    settled = s.settle(1, {0: "a1", 1: "b1", 2: "c1"})
    assert settled.fresh == ["a1"]  # the station replies within the window
    assert settled.held == 2 and settled.stale == [] and settled.dropped == 0
    second = s.plan_round(2)
    assert second.clients == (0,)  # 1 and 2 still owe their replies; 3 never in contact
    assert s.settle(2, {0: "a2"}).fresh == ["a2"]


def test_stale_reply_accepted_within_bound_with_decayed_weight() -> None:
    s = _aware()
    s.plan_round(1)
    s.settle(1, {0: "a1", 1: "b1", 2: "c1"})
    for r in (2, 3):
        s.plan_round(r)
        settled = s.settle(r, {0: f"a{r}"})
    # client 1 is back at 2.5 h, in round 3: age 2 <= max-staleness, weight 0.5 ** 2
    assert settled.stale == [("b1", 1, 2, pytest.approx(0.25))]
    assert settled.fresh == ["a3"] and settled.dropped == 0


def test_reply_beyond_the_bound_is_dropped_and_counted() -> None:
    s = _aware()
    s.plan_round(1)
    s.settle(1, {0: "a1", 1: "b1", 2: "c1"})
    dropped = 0
    for r in range(2, 12):
        plan = s.plan_round(r)
        settled = s.settle(r, {c: f"x{r}" for c in plan.clients})
        dropped += settled.dropped
        assert all(item != "c1" for item, *_ in settled.stale)
        if r == 11:  # client 2 returns at 10.0 h = round 11: age 10 > 2
            assert settled.dropped == 1
    assert dropped == 1


def test_decay_one_and_large_bound_accepts_at_full_weight() -> None:
    s = _aware(max_staleness=20, decay=1.0)
    s.plan_round(1)
    s.settle(1, {1: "b1", 2: "c1", 0: "a1"})
    accepted = []
    for r in range(2, 12):
        s.plan_round(r)
        accepted += s.settle(r, {}).stale
    assert accepted == [("b1", 1, 2, 1.0), ("c1", 1, 10, 1.0)]


def test_failed_client_is_free_again_and_cap_limits_clients() -> None:
    s = _aware(max_clients=2, seed=3)
    plan = s.plan_round(1)
    assert len(plan.clients) == 2 and set(plan.clients) <= {0, 1, 2}
    s.settle(1, {})  # nobody answered (failures)
    assert not any(s.busy(c, 2) for c in range(4))


def test_synchronous_round_lasts_until_every_sampled_client_returned() -> None:
    s: SynchronousSchedule[str] = SynchronousSchedule(
        ContactPlan(WINDOWS), max_clients=3, train_hours=TRAIN
    )
    first = s.plan_round(1)
    # client 3 has no contact at all; 2 receives at 0.1 h and can only reply at 10.0 h
    assert first.clients == (0, 1, 2)
    assert (first.start, first.end) == (0.0, 10.0)
    assert s.settle(1, {0: "a", 1: "b", 2: "c"}).fresh == ["a", "b", "c"]
    second = s.plan_round(2)
    # after 10 h only the station can still complete a round trip
    assert second.clients == (0,)
    assert (second.start, second.end) == (10.0, 10.0 + TRAIN)


def test_bad_schedule_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        _aware(decay=0.0)
