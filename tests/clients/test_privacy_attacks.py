from __future__ import annotations

import numpy as np
import pytest

from clients.attacks import (
    ATTACKS,
    Attack,
    class_similarity,
    is_attacker,
    least_similar,
    poison,
    poison_labels,
)
from clients.privacy import privatise
from common.codec import validate_probabilities
from common.config import RunConfig
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


@pytest.mark.parametrize("kind", [k for k in ATTACKS if k != "label-flip"])
def test_attacks_are_well_formed_lies(kind: str) -> None:
    p = _probs()
    bad = poison(p, kind, partition_id=4, rng=np.random.default_rng(2))
    validate_probabilities(bad, p.shape)  # passes validation: only robust rules catch it
    agree = (bad.argmax(1) == p.argmax(1)).mean()
    assert agree < 0.3


def test_lma_puts_every_row_on_the_class_the_consensus_finds_least_likely() -> None:
    p = _probs()
    view = _probs(c=10)[::-1].copy()  # what the attacker believes the honest mean says
    bad = poison(p, "lma", 0, np.random.default_rng(0), view=view)
    np.testing.assert_array_equal(bad.argmax(1), view.argmin(1))
    assert (bad.max(1) == 1.0).all()


def test_cpa_picks_the_class_least_similar_to_the_top_class() -> None:
    # classes 0 and 1 share mass, 2 never meets 0, class 3 meets only 0
    view = np.array([[0.6, 0.4, 0, 0], [0.5, 0.5, 0, 0], [0, 0.3, 0.7, 0], [0.1, 0, 0, 0.9]])
    sim = class_similarity(view)
    assert np.isinf(np.diag(sim)).all() and sim[0, 1] > sim[0, 2] == 0
    # top class 0 -> 2 (never together; 3 met it once); ties go to the rarer class: top 2
    # never meets 0 or 3 -> 3, top 3 never meets 1 or 2 -> 2
    np.testing.assert_array_equal(least_similar(view), [2, 2, 3, 2])
    bad = poison(view, "cpa", 0, np.random.default_rng(0))
    np.testing.assert_array_equal(bad.argmax(1), [2, 2, 3, 2])


def test_label_flip_moves_one_class_mass_onto_another() -> None:
    p = _probs(50, 4)
    bad = poison(p, "label-flip", 0, np.random.default_rng(0), flip=(1, 3))
    assert (bad[:, 1] == 0).all()
    np.testing.assert_allclose(bad[:, 3], p[:, 3] + p[:, 1], rtol=1e-6)
    np.testing.assert_array_equal(bad[:, [0, 2]], p[:, [0, 2]])
    # without a pair: the attacker's most frequent class onto the one least like it
    own = np.eye(4)[[2, 2, 2, 0, 1]] * 0.7 + 0.075
    moved = poison(own, "label-flip", 0, np.random.default_rng(0))
    assert (moved[:, 2] == 0).all()


def test_the_sleeper_is_honest_until_it_turns_and_mixed_cycles() -> None:
    sleeper = Attack("sleeper", after=3)
    assert [sleeper.playing(0, r) for r in (1, 3, 4, 9)] == [None, None, "lma", "lma"]
    mixed = Attack("mixed")
    assert [mixed.playing(k, 1) for k in range(4)] == ["random", "inverted", "constant", "random"]
    with pytest.raises(ConfigError, match="unknown attack"):
        Attack("bribe")


def test_attack_of_reads_the_run_config() -> None:
    cfg = RunConfig(attack="label-flip", attack_flip="SeaLake:1", attack_scale=5.0)
    attack = Attack.of(cfg, ("AnnualCrop", "Forest", "x", "y", "z", "a", "b", "c", "d", "SeaLake"))
    assert attack.flip == (9, 1) and attack.scale == 5.0 and attack.aim == ()
    omniscient = RunConfig(attack="lma", attack_omniscient=1)
    assert Attack.of(omniscient, ("a", "b"), aim=(1,)).aim == (1,)


def test_statistics_labels_carry_the_lie() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    own = np.eye(4)[labels] * 0.6 + 0.1  # its student is right, least sure of class 3
    own[:, 2] -= 0.05 * (labels != 2)
    rng = np.random.default_rng(0)
    flipped = poison_labels(labels, own, "label-flip", 0, rng, flip=(1, 3))
    np.testing.assert_array_equal(flipped, [0, 0, 3, 3, 2])
    lma = poison_labels(labels, own, "lma", 0, rng)
    np.testing.assert_array_equal(lma, own.argmin(1))
    aimed = poison_labels(labels, own, "lma", 0, rng, aim=(0, 1))
    assert set(aimed) <= {0, 1}
    assert (poison_labels(labels, own, "constant", 5, rng) == 1).all()


def test_attackers_are_the_lowest_partition_ids() -> None:
    assert [k for k in range(100) if is_attacker(k, 100, 0.2)] == list(range(20))
    assert not any(is_attacker(k, 100, 0.0) for k in range(100))
