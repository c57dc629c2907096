"""Trust from history: agreement measures, the ledger's moving average and its state."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import ConfigError
from server.trust import (
    TrustLedger,
    overlap_agreement,
    prediction_agreement,
    relative,
)


def _one_hot(classes: list[int], c: int = 4) -> np.ndarray:
    return np.eye(c)[classes]


def test_prediction_agreement_is_one_minus_total_variation() -> None:
    p = _one_hot([0, 1, 2])
    assert prediction_agreement(p, p) == 1.0
    assert prediction_agreement(p, _one_hot([3, 3, 3])) == 0.0
    half = np.full((3, 4), 0.25)
    assert prediction_agreement(p, half) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="shapes"):
        prediction_agreement(p, p[:2])


def test_overlap_agreement_compares_only_the_tiles_both_replies_cover() -> None:
    now = _one_hot([0, 1, 2])
    past = _one_hot([3, 1, 3])
    # tile 7 answered 1 both times; tiles 5 and 9 were not in the earlier reply
    assert overlap_agreement(np.array([5, 7, 9]), now, np.array([2, 7, 8]), past) == 1.0
    assert overlap_agreement(np.array([5, 9]), now[:2], np.array([1, 2]), past[:2]) is None
    flipped = overlap_agreement(np.array([1, 7]), _one_hot([0, 0]), np.array([7, 1]), past[:2])
    assert flipped == 0.0


def test_relative_agreement_puts_the_median_client_at_one() -> None:
    rel = relative({"a": 0.8, "b": 0.9, "c": 0.4, "d": 1.0, "e": 0.85})
    assert rel["e"] == 1.0 and rel["d"] == 1.0  # capped
    assert rel["c"] == pytest.approx(0.4 / 0.85)
    assert relative({}) == {}
    assert relative({"a": 0.0, "b": 0.0}) == {"a": 1.0, "b": 1.0}  # nothing to tell apart


def test_trust_is_a_moving_average_that_flags_a_client_that_turns() -> None:
    ledger = TrustLedger(threshold=0.5, memory=0.4)
    assert ledger.trust("new") == 1.0 and ledger.weight("new") == 1.0  # never scored
    ledger.observe(1, {"honest": 0.95, "sleeper": 1.0, "liar": 0.05})
    assert ledger.trust("liar") == 0.05  # a first agreement is taken whole
    assert ledger.flagged == ["liar"] and ledger.weight("liar") == 0.0
    ledger.observe(2, {"honest": 0.9, "sleeper": 0.0})
    assert ledger.trust("sleeper") == pytest.approx(0.4)  # one lie after an honest past
    assert ledger.trust("honest") == pytest.approx(0.4 * 0.95 + 0.6 * 0.9)
    assert ledger.flagged == ["liar", "sleeper"]
    ledger.observe(3, {"liar": 1.0, "honest": 0.3})  # one bad round does not flag the honest
    assert "honest" not in ledger.flagged and "liar" not in ledger.flagged
    assert ledger.clients["honest"].rounds == 3 and ledger.clients["honest"].last_round == 3


def test_summary_counts_and_names_the_flagged_clients() -> None:
    ledger = TrustLedger(threshold=0.5, memory=0.5)
    ledger.observe(1, {"a": 0.9, "b": 0.2, "c": 0.7})
    s = ledger.summary(["b", "c", "unknown"])
    assert s["threshold"] == 0.5 and s["clients"] == 3 and s["under_threshold"] == 1
    assert s["min"] == 0.2 and s["median"] == 0.7 and s["flagged"] == ["b"]
    assert s["scored"] == {"b": 0.2, "c": 0.7}
    assert TrustLedger().summary()["min"] is None


def test_state_round_trip_keeps_trust_and_past_replies() -> None:
    ledger = TrustLedger(threshold=0.6, memory=0.3)
    ledger.observe(4, {"a": 0.8, "b": 0.1})
    ledger.past["a"] = (np.array([1, 2]), _one_hot([0, 1]))
    again = TrustLedger(threshold=0.6, memory=0.3)
    again.load_state(ledger.state())
    assert again.clients == ledger.clients and again.flagged == ["b"]
    np.testing.assert_array_equal(again.past["a"][1], ledger.past["a"][1])
    ledger.observe(5, {"a": 0.0})  # the copy is independent
    assert again.trust("a") == 0.8


@pytest.mark.parametrize(("threshold", "memory"), [(0.0, 0.5), (1.0, 0.5), (0.5, 1.0)])
def test_bad_settings_are_refused(threshold: float, memory: float) -> None:
    with pytest.raises(ConfigError, match="trust-"):
        TrustLedger(threshold, memory)
