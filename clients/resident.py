"""What a ClientApp process keeps in memory between messages, each part bounded (LRU).

Flower keeps every node's Context (its ``state``) itself and hands a node's next message to
whichever actor is free; an agent's ClientApp process may restart. The state therefore stays
the truth, and this module only spares rebuilding what the state or the data determine:

* the student a client trained in this process, under the token its state got together with
  the weights (clients/storage.py). The module is reused only while the node's state names
  that same token: if another process trained the client since, if a round failed after
  taking the module out, or after a restart or a resume, the tokens differ and the student
  is rebuilt from the state's weights, a student file or the pre-installed one, as before;
* a client's normalised (train, held-out) tiles, by run config, node and band statistics;
* the round's normalised reference tiles (every client of a round gets the same indices);
* the weights of each pre-installed student, read from the model cache once;
* the run's tiles and partition (:func:`federation`): ``load_federation`` without the band
  statistics of the archive, which the server sends with every message (computing them reads
  4,096 archive tiles: seconds of a process's first round).

Modules that leave the student cache are recycled for the next client of their architecture
(``load_state_dict`` overwrites every parameter and buffer), so a fleet of thousands of clients
builds a handful of modules per process.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import nn

from clients.node import Node
from common.bands import DATASETS, DatasetSpec
from common.config import RunConfig
from common.dataset import BandStats
from common.federation import Federation, Split, dataset_folder, load_federation
from common.models import build_model
from common.partition import Partition, make_partition
from common.preinstalled import preinstalled_student
from common.rasters import LabelledArrays, load_folder

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

STUDENTS = 32  # students per process: medium ~1.6 MB of weights each (gradients dropped)
SHARDS = 32  # shards per process: 50 RGB tiles of 64 px are 2.4 MB
REFERENCE = 2  # reference batches: this round's and the last one
SPARE = 4  # recycled modules per architecture


class LRU(Generic[K, V]):
    """A dict of at most ``capacity`` entries that forgets the least recently used."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def put(self, key: K, value: V) -> list[V]:
        """Insert ``value``; returns what was evicted to make room."""
        self._items[key] = value
        self._items.move_to_end(key)
        evicted = []
        while len(self._items) > self.capacity:
            evicted.append(self._items.popitem(last=False)[1])
        return evicted

    def clear(self) -> None:
        self._items.clear()


@dataclass(frozen=True)
class RunData:
    """The run's tiles (memory-mapped) and their partition: what ``load_federation`` gives
    a client before the band statistics."""

    spec: DatasetSpec
    arrays: LabelledArrays
    partition: Partition

    @property
    def num_classes(self) -> int:
        return len(self.spec.classes)


@functools.lru_cache(maxsize=4)
def run_data(cfg: RunConfig) -> RunData:
    """The tiles and partition of ``cfg``'s run, loaded once per process (the same as
    ``load_federation(cfg)``'s: same folder, cache and partition spec)."""
    spec = DATASETS[cfg.dataset]
    arrays = load_folder(dataset_folder(cfg), spec)
    return RunData(spec, arrays, make_partition(arrays.labels, cfg.split_spec()))


def federation(cfg: RunConfig, stats: BandStats) -> Federation:
    """``load_federation(cfg).with_stats(stats)``, without computing the archive's statistics
    (a client always normalises with the server's). With a ``test-dir`` (read only to
    evaluate) it is exactly that."""
    if cfg.test_dir:
        return load_federation(cfg).with_stats(stats)
    data = run_data(cfg)
    return Federation(spec=data.spec, arrays=data.arrays, partition=data.partition, stats=stats)


NodeKey = tuple[int, int]  # (run id, node id) of a Flower context


@dataclass(frozen=True)
class Kept:
    token: str
    arch: str
    model: nn.Module


_students: LRU[NodeKey, Kept] = LRU(STUDENTS)
_spare: dict[str, list[nn.Module]] = {}
_shards: LRU[Hashable, tuple[Split, Split]] = LRU(SHARDS)
_reference: LRU[Hashable, torch.Tensor] = LRU(REFERENCE)
_preinstalled: LRU[tuple[RunConfig, str], dict[str, torch.Tensor]] = LRU(8)


def take_student(key: NodeKey, token: str | None, arch: str) -> nn.Module | None:
    """The module this process kept for ``key`` if the node's state names ``token`` (it is
    taken out: a round that fails half-way leaves nothing behind), else None."""
    kept = _students.pop(key)
    if kept is None:
        return None
    if token is not None and kept.token == token and kept.arch == arch:
        return kept.model
    _recycle(kept)
    return None


def peek_student(key: NodeKey, token: str | None, arch: str) -> nn.Module | None:
    """Like :func:`take_student`, but the module stays kept (read-only use: evaluation)."""
    kept = _students.get(key)
    if kept is not None and token is not None and kept.token == token and kept.arch == arch:
        return kept.model
    return None


def keep_student(key: NodeKey, token: str, arch: str, model: nn.Module) -> None:
    """Keep ``model`` as the student the node's state now names by ``token``."""
    model.zero_grad(set_to_none=True)  # the next round's optimiser starts from no gradient
    for evicted in _students.put(key, Kept(token, arch, model)):
        _recycle(evicted)


def _recycle(kept: Kept) -> None:
    spare = _spare.setdefault(kept.arch, [])
    if len(spare) < SPARE:
        spare.append(kept.model)


def module(
    arch: str, num_bands: int, num_classes: int, state: dict[str, torch.Tensor]
) -> nn.Module:
    """A module of ``arch`` holding ``state``: a recycled one, or a new one."""
    spare = _spare.get(arch)
    model = spare.pop() if spare else build_model(arch, num_bands, num_classes)
    model.load_state_dict(state)
    return model


def preinstalled(cfg: RunConfig, fed: Federation, arch: str) -> nn.Module:
    """The pre-installed ``arch`` student (common/preinstalled.py), its weights read once."""
    key = (cfg, arch)
    state = _preinstalled.get(key)
    if state is None:
        model = preinstalled_student(cfg, fed, arch)
        _preinstalled.put(key, {k: v.detach().clone() for k, v in model.state_dict().items()})
        return model
    return module(arch, fed.spec.num_bands, fed.num_classes, state)


def node_splits(node: Node, fed: Federation) -> tuple[Split, Split]:
    """``node.splits(fed)``, a simulation shard's tensors normalised once per process.

    An agent reads its folder every round (imagery may have arrived since the last one)."""
    if node.data_dir is not None:
        return node.splits(fed)
    key = (node.cfg, node.partition_id, fed.stats)
    splits = _shards.get(key)
    if splits is None:
        splits = node.splits(fed)
        _shards.put(key, splits)
    return splits


def reference(cfg: RunConfig, fed: Federation, indices: np.ndarray) -> torch.Tensor:
    """``fed.reference_images(indices)``, normalised once per round and process.

    The tensor is shared by the clients of the round: the training loop only indexes it."""
    key = (cfg, fed.stats, indices.dtype.str, indices.tobytes())
    tiles = _reference.get(key)
    if tiles is None:
        tiles = fed.reference_images(indices)
        _reference.put(key, tiles)
    return tiles


def held() -> dict[str, int]:
    """How many entries each part holds (the bound of each is its capacity above)."""
    return {
        "students": len(_students),
        "spare": sum(len(v) for v in _spare.values()),
        "shards": len(_shards),
        "reference": len(_reference),
        "preinstalled": len(_preinstalled),
    }


def forget() -> None:
    """Drop everything kept (tests; a process that wants its memory back)."""
    for cache in (_students, _shards, _reference, _preinstalled):
        cache.clear()
    _spare.clear()
    run_data.cache_clear()
