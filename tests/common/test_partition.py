from __future__ import annotations

import numpy as np
import pytest

from common.errors import ConfigError
from common.partition import SplitSpec, make_partition, split_holdout


def _labels(n: int = 3000, classes: int = 10, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, n)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 100.0])
def test_parts_are_disjoint_and_cover_the_pool(alpha: float) -> None:
    labels = _labels()
    part = make_partition(labels, SplitSpec(num_clients=20, alpha=alpha, seed=3))
    everything = np.concatenate(part.all_parts())
    assert len(everything) == len(np.unique(everything)) == len(labels)
    assert len(part.shards) == 20
    assert min(len(s) for s in part.shards) >= 8
    assert abs(len(part.reference) - 0.12 * len(labels)) < 15
    assert abs(len(part.archive) - 0.24 * len(labels)) < 15


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels = _labels()
    spec = SplitSpec(num_clients=10, alpha=0.5, seed=7)
    a, b = make_partition(labels, spec), make_partition(labels, spec)
    for x, y in zip(a.all_parts(), b.all_parts(), strict=True):
        np.testing.assert_array_equal(x, y)
    c = make_partition(labels, SplitSpec(num_clients=10, alpha=0.5, seed=8))
    assert not np.array_equal(a.shards[0], c.shards[0])


def test_small_alpha_gives_skewed_shards_and_large_alpha_balanced() -> None:
    labels = _labels(6000)

    def mean_classes_held(alpha: float) -> float:
        part = make_partition(labels, SplitSpec(num_clients=20, alpha=alpha, seed=0))
        counts = [np.bincount(labels[s], minlength=10) for s in part.shards]
        return float(np.mean([(c > 0.05 * c.sum()).sum() for c in counts]))

    assert mean_classes_held(0.1) < 5 < mean_classes_held(100.0)


def test_reference_test_archive_are_stratified() -> None:
    labels = _labels(5000)
    part = make_partition(labels, SplitSpec(seed=0))
    for idx in (part.reference, part.test, part.archive):
        share = np.bincount(labels[idx], minlength=10) / len(idx)
        overall = np.bincount(labels, minlength=10) / len(labels)
        np.testing.assert_allclose(share, overall, atol=0.01)


def test_holdout_is_disjoint_and_deterministic() -> None:
    shard = np.arange(100, 200)
    tr, ho = split_holdout(shard, 0.2, seed=1, client=3)
    assert len(ho) == 20 and len(np.intersect1d(tr, ho)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, ho])), shard)
    np.testing.assert_array_equal(split_holdout(shard, 0.2, seed=1, client=3)[1], ho)


def test_bad_specs_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="fractions"):
        SplitSpec(reference_fraction=0.5, test_fraction=0.3, archive_fraction=0.3)
    with pytest.raises(ConfigError, match="too few"):
        make_partition(_labels(30), SplitSpec(num_clients=20))


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_shards_with_replacement_at_fleet_scale(alpha: float) -> None:
    labels = _labels(3000)
    spec = SplitSpec(num_clients=10_000, alpha=alpha, seed=4, shard_size=40)
    part = make_partition(labels, spec)
    assert len(part.shards) == 10_000
    fixed = np.concatenate([part.reference, part.test, part.archive])
    pool = np.setdiff1d(np.arange(len(labels)), fixed)
    assert len(pool) < 10_000 * 40  # far too few tiles for disjoint shards
    seen = [part.shards[k] for k in (0, 1, 9_999)]
    for shard in seen:
        assert len(shard) == 40 and len(np.unique(shard)) == 40  # no tile twice in a shard
        assert np.isin(shard, pool).all()  # never the reference, test or archive tiles
    # Drawn with replacement across clients: some tiles are held by several clients.
    held = np.concatenate([part.shards[k] for k in range(300)])
    assert len(np.unique(held)) < len(held)
    again = make_partition(labels, spec)
    np.testing.assert_array_equal(again.shards[9_999], seen[2])
    with pytest.raises(IndexError):
        part.shards[10_000]


def test_shards_with_replacement_follow_alpha() -> None:
    labels = _labels(6000)

    def mean_classes_held(alpha: float) -> float:
        part = make_partition(labels, SplitSpec(num_clients=500, alpha=alpha, shard_size=60))
        counts = [np.bincount(labels[part.shards[k]], minlength=10) for k in range(100)]
        return float(np.mean([(c > 0.05 * c.sum()).sum() for c in counts]))

    assert mean_classes_held(0.1) < 5 < mean_classes_held(100.0)


def test_shard_size_errors() -> None:
    with pytest.raises(ConfigError, match="shard_size"):
        SplitSpec(shard_size=-2)
    with pytest.raises(ConfigError, match="larger than the client pool"):
        make_partition(_labels(100), SplitSpec(num_clients=5, shard_size=1000))


def test_archive_gap_moves_scarce_classes_to_the_clients() -> None:
    from common.partition import scarce_classes

    labels = _labels(6000)
    plain = make_partition(labels, SplitSpec(num_clients=20, alpha=0.1, seed=5))
    spec = SplitSpec(num_clients=20, alpha=0.1, seed=5, gap_classes=3, gap_keep=0.05)
    gap = make_partition(labels, spec)
    scarce = scarce_classes(labels, spec)
    assert len(scarce) == 3 and len(set(scarce.tolist())) == 3
    # reference and test are the same tiles: figures on them compare across the two
    np.testing.assert_array_equal(plain.reference, gap.reference)
    np.testing.assert_array_equal(plain.test, gap.test)
    everything = np.concatenate(gap.all_parts())
    assert len(everything) == len(np.unique(everything)) == len(labels)
    for c in range(10):
        before = int((labels[plain.archive] == c).sum())
        after = int((labels[gap.archive] == c).sum())
        if c in scarce:
            assert after == max(1, round(0.05 * before))
        else:
            assert after == before
    moved = len(plain.archive) - len(gap.archive)
    assert sum(len(s) for s in gap.shards) == sum(len(s) for s in plain.shards) + moved
    # the same seed picks the same classes; another seed, usually others
    np.testing.assert_array_equal(scarce, scarce_classes(labels, spec))


def test_archive_gap_is_validated() -> None:
    with pytest.raises(ConfigError, match="N:KEEP"):
        SplitSpec(gap_classes=-1)
    from common.partition import scarce_classes

    with pytest.raises(ConfigError, match="leaves none"):
        scarce_classes(_labels(), SplitSpec(gap_classes=10, gap_keep=0.1))
