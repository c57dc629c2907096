from __future__ import annotations

import numpy as np
import pytest
import torch

from common.dataset import BandStats, TileDataset
from common.errors import ConfigError


def test_stats_normalise_to_zero_mean_unit_std() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal([[[[100.0]], [[2000.0]]]], [[[[10.0]], [[300.0]]]], (64, 2, 8, 8))
    stats = BandStats.from_images(images)
    x = stats.normalise(images)
    assert x.dtype == torch.float32 and x.shape == (64, 2, 8, 8)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-2)


def test_samples_are_dicts_of_float_chw_images_and_labels() -> None:
    images = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    ds = TileDataset(images, np.array([4, 7]), BandStats.from_images(images))
    sample = ds[1]
    assert set(sample) == {"image", "label"}
    assert sample["image"].shape == (3, 4, 4) and sample["image"].dtype == torch.float32
    assert int(sample["label"]) == 7 and len(ds) == 2


def test_band_count_mismatch_is_an_error() -> None:
    stats = BandStats((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="3-band"):
        stats.normalise(np.zeros((1, 13, 4, 4)))


def test_stats_parse_numbers_from_records_and_files() -> None:
    assert BandStats.parse([1, "2"], (3.5, 4)) == BandStats((1.0, 2.0), (3.5, 4.0))
    with pytest.raises(TypeError):
        BandStats.parse(1.0, [1.0])
    with pytest.raises(ValueError):
        BandStats.parse(["one"], [1.0])
