from __future__ import annotations

import numpy as np
import pytest

from clients.attacks import ATTACKS, is_attacker, poison
from clients.privacy import privatise
from common.codec import validate_probabilities
from common.errors import ConfigError


def _probs(n: int = 200, c: int = 10) -> np.ndarray:
    return np.random.default_rng(0).dirichlet(np.full(c, 0.3), n).astype(np.float32)


def test_dp_off_is_the_identity_and_on_stays_a_distribution() -> None:
    p = _probs()
    np.testing.assert_array_equal(privatise(p, 1.0, 0.0, np.random.default_rng(1)), p)
    noisy = privatise(p, 1.0, 0.5, np.random.default_rng(1))
    validate_probabilities(noisy, p.shape)
    assert not np.allclose(noisy, p)
    # more noise moves the predictions further from the truth
    far = privatise(p, 1.0, 2.0, np.random.default_rng(1))
    assert np.abs(far - p).mean() > np.abs(noisy - p).mean()
    with pytest.raises(ConfigError, match="dp-clip"):
        privatise(p, 0.0, 1.0, np.random.default_rng(1))


@pytest.mark.parametrize("kind", ATTACKS)
def test_attacks_are_well_formed_lies(kind: str) -> None:
    p = _probs()
    bad = poison(p, kind, partition_id=4, rng=np.random.default_rng(2))
    validate_probabilities(bad, p.shape)  # passes validation: only robust rules catch it
    agree = (bad.argmax(1) == p.argmax(1)).mean()
    assert agree < 0.3


def test_attackers_are_the_lowest_partition_ids() -> None:
    assert [k for k in range(100) if is_attacker(k, 100, 0.2)] == list(range(20))
    assert not any(is_attacker(k, 100, 0.0) for k in range(100))
