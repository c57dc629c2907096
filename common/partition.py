"""Seeded, deterministic split of a labelled pool into the federation's roles.

* reference: public tiles every node holds; only their indices travel, never labels
* test: the server's held-out evaluation split
* archive: the ground segment's labelled data, the teacher's training set
* shards: one private shard per client, IID or Dirichlet(alpha) over labels

All parts are disjoint and the same inputs always give the same split. At fleet scale
(``shard_size`` > 0) the pool is too small for disjoint shards: each client then draws its own
shard from the client pool, so shards of different clients may overlap (drawn with
replacement across clients; no tile twice within one shard). Such shards are computed on
demand from (seed, client), so 10,000 clients cost no memory until a client is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    shard_size: int = 0  # >0: shards of this size drawn with replacement across clients
    # Ground gap: ``gap_classes`` classes (chosen by the seed) keep only ``gap_keep`` of their
    # archive share; the tiles taken out of the archive go to the client pool. The archive
    # then lacks what the fleet sees (labels from other regions or years).
    gap_classes: int = 0
    gap_keep: float = 1.0

    def __post_init__(self) -> None:
        fractions = (self.reference_fraction, self.test_fraction, self.archive_fraction)
        if any(f <= 0 for f in fractions) or sum(fractions) >= 1:
            raise ConfigError(
                f"reference/test/archive fractions {fractions} must be positive and sum below 1"
            )
        if self.num_clients < 1:
            raise ConfigError(f"num_clients must be at least 1, got {self.num_clients}")
        if self.gap_classes < 0 or not 0 <= self.gap_keep <= 1:
            raise ConfigError(
                f"archive gap {self.gap_classes}:{self.gap_keep:g} must be N:KEEP with N >= 0 "
                "classes and KEEP in [0, 1]"
            )
        if self.shard_size < 0:
            raise ConfigError(
                f"shard_size must be 0 (disjoint shards) or more, got {self.shard_size}"
            )


class ResampledShards:
    """Client shards drawn from a shared pool, each from its own seeded generator.

    Client ``i`` draws class proportions q ~ Dir(alpha) (uniform draws if alpha <= 0), splits
    ``shard_size`` among the classes by a multinomial draw and takes that many distinct tiles
    of each class. The shard depends only on (seed, i): memory and time are per client asked
    for, not per client registered.
    """

    def __init__(
        self,
        labels: np.ndarray,
        pool: np.ndarray,
        num_clients: int,
        size: int,
        alpha: float,
        seed: int,
    ) -> None:
        if size > len(pool):
            raise ConfigError(
                f"shard-size {size} is larger than the client pool of {len(pool)} tiles"
            )
        self._pool = pool
        self._by_class = [pool[labels[pool] == c] for c in np.unique(labels[pool])]
        self._num_clients = num_clients
        self._size = size
        self._alpha = alpha
        self._seed = seed

    def __len__(self) -> int:
        return self._num_clients

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(self._num_clients))

    def __getitem__(self, client: int) -> np.ndarray:
        if not 0 <= client < self._num_clients:
            raise IndexError(f"client {client} outside 0..{self._num_clients - 1}")
        rng = np.random.default_rng([self._seed, client, 0x5A4D])
        if self._alpha <= 0:
            return np.sort(rng.choice(self._pool, self._size, replace=False))
        sizes = np.array([len(c) for c in self._by_class])
        q = rng.dirichlet(np.full(len(sizes), self._alpha))
        counts = np.minimum(rng.multinomial(self._size, q), sizes)
        short = self._size - int(counts.sum())
        while short > 0:  # a class ran out of tiles: the others make up the rest
            room = sizes - counts
            extra = np.minimum(rng.multinomial(short, room / room.sum()), room)
            counts += extra
            short -= int(extra.sum())
        taken = [
            rng.choice(members, k, replace=False)
            for members, k in zip(self._by_class, counts, strict=True)
            if k
        ]
        return np.sort(np.concatenate(taken))


@dataclass(frozen=True)
class Partition:
    reference: np.ndarray
    test: np.ndarray
    archive: np.ndarray
    shards: tuple[np.ndarray, ...] | ResampledShards

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
    """Equal-size shards whose label mix is drawn per client from Dirichlet(alpha).

    Each client in turn draws class proportions q ~ Dir(alpha) and takes its share of tiles
    class by class; a class that has run out is replaced by the remaining ones in proportion
    to q. Small alpha gives clients that hold one or two classes; sizes stay balanced, so
    every client has data even with a hundred clients and alpha 0.1.
    """
    classes = np.unique(labels[pool])
    stock = {int(c): list(rng.permutation(pool[labels[pool] == c])) for c in classes}
    sizes = np.full(spec.num_clients, len(pool) // spec.num_clients)
    sizes[: len(pool) % spec.num_clients] += 1
    if sizes.min() < min(spec.min_shard, 1) or sizes.min() == 0:
        raise ConfigError(
            f"{len(pool)} client tiles are too few for {spec.num_clients} clients: "
            "use fewer clients"
        )
    shards: list[np.ndarray] = []
    for size in sizes:
        q = rng.dirichlet(np.full(len(classes), spec.alpha))
        taken: list[int] = []
        need = int(size)
        while need > 0:
            avail = np.array([len(stock[int(c)]) for c in classes], dtype=float)
            weights = q * (avail > 0)
            if weights.sum() <= 0:
                weights = avail
            counts = rng.multinomial(need, weights / weights.sum())
            for c, k in zip(classes, counts, strict=True):
                k = min(int(k), len(stock[int(c)]))
                taken.extend(stock[int(c)][:k])
                del stock[int(c)][:k]
                need -= k
        shards.append(np.sort(np.asarray(taken, dtype=np.int64)))
    return shards


def scarce_classes(labels: np.ndarray, spec: SplitSpec) -> np.ndarray:
    """The classes an archive gap makes scarce at the ground (sorted; empty without a gap)."""
    classes = np.unique(np.asarray(labels))
    if spec.gap_classes <= 0:
        return np.empty(0, dtype=np.int64)
    if spec.gap_classes >= len(classes):
        raise ConfigError(
            f"archive gap of {spec.gap_classes} classes leaves none of the {len(classes)} "
            "classes well covered at the ground: use fewer"
        )
    # Its own generator: the default partition's draws stay exactly as they were.
    rng = np.random.default_rng([spec.seed, 0x6A9])
    return np.sort(rng.choice(classes, spec.gap_classes, replace=False)).astype(np.int64)


def _ground_gap(
    labels: np.ndarray, archive: np.ndarray, pool: np.ndarray, spec: SplitSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Move all but ``gap_keep`` of each scarce class's archive tiles into the client pool."""
    rng = np.random.default_rng([spec.seed, 0x6AA])
    moved: list[np.ndarray] = []
    for c in scarce_classes(labels, spec):
        members = rng.permutation(archive[labels[archive] == c])
        keep = max(1, int(round(spec.gap_keep * len(members)))) if len(members) else 0
        moved.append(members[keep:])
    out = np.concatenate(moved) if moved else np.empty(0, dtype=np.int64)
    return np.setdiff1d(archive, out), np.union1d(pool, out)


def make_partition(labels: np.ndarray, spec: SplitSpec) -> Partition:
    """Split ``labels``' indices into reference, test, archive and client shards."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < spec.num_clients * 2 and spec.shard_size == 0:
        raise ConfigError(f"{n} samples are too few for {spec.num_clients} clients")
    rng = np.random.default_rng(spec.seed)
    pool = np.arange(n, dtype=np.int64)
    remaining = 1.0
    reference, pool = _stratified_take(labels, pool, spec.reference_fraction / remaining, rng)
    remaining -= spec.reference_fraction
    test, pool = _stratified_take(labels, pool, spec.test_fraction / remaining, rng)
    remaining -= spec.test_fraction
    archive, pool = _stratified_take(labels, pool, spec.archive_fraction / remaining, rng)
    if spec.gap_classes > 0:
        archive, pool = _ground_gap(labels, archive, pool, spec)
    shards: tuple[np.ndarray, ...] | ResampledShards
    if spec.shard_size > 0:
        shards = ResampledShards(
            labels, pool, spec.num_clients, spec.shard_size, spec.alpha, spec.seed
        )
    elif spec.alpha > 0:
        shards = tuple(_dirichlet_shards(labels, pool, spec, rng))
    else:
        parts = np.array_split(rng.permutation(pool), spec.num_clients)
        shards = tuple(np.sort(s) for s in parts)
    return Partition(reference=reference, test=test, archive=archive, shards=shards)


def split_holdout(
    shard: np.ndarray, fraction: float, seed: int, client: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split one client's shard into (train, local held-out) deterministically."""
    rng = np.random.default_rng([seed, client])
    perm = rng.permutation(shard)
    k = int(round(fraction * len(perm))) if len(perm) > 1 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])
