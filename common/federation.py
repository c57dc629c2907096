"""One obvious path from the data folder to every split the federation uses.

Every process (server, simulated client, benchmark) calls :func:`load_federation` with the same
run config and gets the same decoded arrays (memory-mapped from the cache), the same partition
and the same band statistics, computed on the ground archive.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from common.bands import DATASETS, DatasetSpec
from common.config import RunConfig
from common.dataset import BandStats
from common.errors import DataNotFoundError
from common.partition import Partition, make_partition, split_holdout
from common.rasters import LabelledArrays, load_folder
from common.settings import data_root


@dataclass(frozen=True)
class Split:
    """Normalised tiles and their labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Federation:
    spec: DatasetSpec
    arrays: LabelledArrays
    partition: Partition
    stats: BandStats
    external_test: LabelledArrays | None = None  # --test-dir: evaluate here instead

    def test_split(self) -> Split:
        """The evaluation split: the external test folder if one is set, else the internal one."""
        if self.external_test is None:
            return self.split(self.partition.test)
        return Split(
            x=self.stats.normalise(np.asarray(self.external_test.images)),
            y=torch.from_numpy(np.asarray(self.external_test.labels, dtype=np.int64)),
        )

    @property
    def num_classes(self) -> int:
        return len(self.spec.classes)

    def split(self, indices: np.ndarray) -> Split:
        idx = np.sort(np.asarray(indices, dtype=np.int64))
        return Split(
            x=self.stats.normalise(np.asarray(self.arrays.images[idx])),
            y=torch.from_numpy(np.asarray(self.arrays.labels[idx], dtype=np.int64)),
        )

    def reference_images(self, positions: np.ndarray) -> torch.Tensor:
        """Normalised reference tiles at ``positions`` (indices into the reference set)."""
        return self.stats.normalise(
            np.asarray(self.arrays.images[self.partition.reference[positions]])
        )

    def with_stats(self, stats: BandStats) -> Federation:
        """The same data normalised with other statistics (e.g. the ones the server sent)."""
        return replace(self, stats=stats)

    def client_splits(self, client: int, holdout_fraction: float, seed: int) -> tuple[Split, Split]:
        train, holdout = split_holdout(
            self.partition.shards[client], holdout_fraction, seed, client
        )
        return self.split(train), self.split(holdout)


def dataset_folder(cfg: RunConfig) -> Path:
    return data_root(cfg.data_dir or None) / DATASETS[cfg.dataset].folder


def _external_test(folder: Path, spec: DatasetSpec) -> LabelledArrays:
    if not folder.is_dir():
        raise DataNotFoundError(
            f"test-dir {folder} is not a folder: pass a labelled folder of "
            f"<Class>/<name>{spec.suffix} tiles with classes among {', '.join(spec.classes)}, "
            "or leave test-dir empty to evaluate on the internal test split"
        )
    return load_folder(folder, spec)


@functools.lru_cache(maxsize=4)
def load_federation(cfg: RunConfig) -> Federation:
    """Load (once per process) the data, partition and statistics of a run."""
    spec = DATASETS[cfg.dataset]
    arrays = load_folder(dataset_folder(cfg), spec)
    partition = make_partition(arrays.labels, cfg.split_spec())
    stats = BandStats.from_images(arrays.images[partition.archive])
    external = _external_test(Path(cfg.test_dir), spec) if cfg.test_dir else None
    return Federation(
        spec=spec, arrays=arrays, partition=partition, stats=stats, external_test=external
    )
