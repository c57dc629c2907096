"""EO tiles as normalised float32 tensors, with per-band statistics from training data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from common.errors import ConfigError


@dataclass(frozen=True)
class BandStats:
    """Per-band mean and standard deviation, computed on a training split."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def parse(cls, mean: Any, std: Any) -> BandStats:
        """From two sequences of numbers as a record, a file or JSON holds them (TypeError or
        ValueError for anything else)."""
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std))

    @classmethod
    def from_images(cls, images: np.ndarray, max_samples: int = 4096) -> BandStats:
        """Statistics of (N, C, H, W) tiles; at most ``max_samples`` evenly spaced tiles."""
        if images.ndim != 4 or len(images) == 0:
            raise ConfigError(f"need a non-empty (N, C, H, W) array, got shape {images.shape}")
        step = max(1, len(images) // max_samples)
        sample = np.asarray(images[::step], dtype=np.float64)
        mean = sample.mean(axis=(0, 2, 3))
        std = np.maximum(sample.std(axis=(0, 2, 3)), 1e-6)
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def normalise(self, images: np.ndarray) -> torch.Tensor:
        """(N, C, H, W) raw tiles -> float32 normalised tensor in channels_last layout."""
        if images.ndim != 4 or images.shape[1] != len(self.mean):
            raise ConfigError(
                f"tiles of shape {images.shape} do not match {len(self.mean)}-band statistics"
            )
        x = torch.from_numpy(np.asarray(images, dtype=np.float32))
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


class TileDataset(Dataset[dict[str, torch.Tensor]]):
    """Samples as dicts of an ``image`` (float32 C x H x W) and a ``label`` (int64)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, stats: BandStats) -> None:
        if len(images) != len(labels):
            raise ConfigError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.stats = stats

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = self.stats.normalise(np.asarray(self.images[i : i + 1]))[0]
        return {"image": image, "label": torch.tensor(int(self.labels[i]))}
