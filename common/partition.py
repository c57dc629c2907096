"""Seeded, deterministic split of a labelled pool into the federation's roles.

* reference: public tiles every node holds; only their indices travel, never labels
* test: the server's held-out evaluation split
* archive: the ground segment's labelled data, the teacher's training set
* shards: one private shard per client, IID or Dirichlet(alpha) over labels

All parts are disjoint and the same inputs always give the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.errors import ConfigError


@dataclass(frozen=True)
class SplitSpec:
    reference_fraction: float = 0.12
    test_fraction: float = 0.12
    archive_fraction: float = 0.24
    num_clients: int = 20
    alpha: float = 0.5  # Dirichlet concentration; 0 or below means IID
    seed: int = 42
    min_shard: int = 8

    def __post_init__(self) -> None:
        fractions = (self.reference_fraction, self.test_fraction, self.archive_fraction)
        if any(f <= 0 for f in fractions) or sum(fractions) >= 1:
            raise ConfigError(
                f"reference/test/archive fractions {fractions} must be positive and sum below 1"
            )
        if self.num_clients < 1:
            raise ConfigError(f"num_clients must be at least 1, got {self.num_clients}")


@dataclass(frozen=True)
class Partition:
    reference: np.ndarray
    test: np.ndarray
    archive: np.ndarray
    shards: tuple[np.ndarray, ...]

    def all_parts(self) -> list[np.ndarray]:
        return [self.reference, self.test, self.archive, *self.shards]


def _stratified_take(
    labels: np.ndarray, pool: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Take ``fraction`` of ``pool`` per class; return (taken, rest), both sorted."""
    taken: list[np.ndarray] = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        members = rng.permutation(members)
        taken.append(members[: int(round(fraction * len(members)))])
    took = np.sort(np.concatenate(taken)) if taken else np.empty(0, dtype=np.int64)
    return took, np.setdiff1d(pool, took)


def _dirichlet_shards(
    labels: np.ndarray, pool: np.ndarray, spec: SplitSpec, rng: np.random.Generator
) -> list[np.ndarray]:
    classes = np.unique(labels[pool])
    min_size = min(spec.min_shard, len(pool) // spec.num_clients)
    for _attempt in range(100):
        buckets: list[list[int]] = [[] for _ in range(spec.num_clients)]
        for c in classes:
            members = rng.permutation(pool[labels[pool] == c])
            props = rng.dirichlet(np.full(spec.num_clients, spec.alpha))
            cuts = (np.cumsum(props)[:-1] * len(members)).astype(int)
            for bucket, part in zip(buckets, np.split(members, cuts), strict=True):
                bucket.extend(part.tolist())
        if min(len(b) for b in buckets) >= min_size:
            break
    else:
        raise ConfigError(
            f"could not draw {spec.num_clients} Dirichlet(alpha={spec.alpha}) shards of at least "
            f"{min_size} samples from {len(pool)}: use fewer clients or a larger alpha"
        )
    return [np.sort(np.asarray(b, dtype=np.int64)) for b in buckets]


def make_partition(labels: np.ndarray, spec: SplitSpec) -> Partition:
    """Split ``labels``' indices into reference, test, archive and client shards."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < spec.num_clients * 2:
        raise ConfigError(f"{n} samples are too few for {spec.num_clients} clients")
    rng = np.random.default_rng(spec.seed)
    pool = np.arange(n, dtype=np.int64)
    remaining = 1.0
    reference, pool = _stratified_take(labels, pool, spec.reference_fraction / remaining, rng)
    remaining -= spec.reference_fraction
    test, pool = _stratified_take(labels, pool, spec.test_fraction / remaining, rng)
    remaining -= spec.test_fraction
    archive, pool = _stratified_take(labels, pool, spec.archive_fraction / remaining, rng)
    if spec.alpha > 0:
        shards = _dirichlet_shards(labels, pool, spec, rng)
    else:
        shards = [np.sort(s) for s in np.array_split(rng.permutation(pool), spec.num_clients)]
    return Partition(reference=reference, test=test, archive=archive, shards=tuple(shards))


def split_holdout(
    shard: np.ndarray, fraction: float, seed: int, client: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split one client's shard into (train, local held-out) deterministically."""
    rng = np.random.default_rng([seed, client])
    perm = rng.permutation(shard)
    k = int(round(fraction * len(perm))) if len(perm) > 1 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])
