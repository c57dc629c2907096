"""The labelled tiles the on-board commands use: reference tiles to calibrate int8
quantisation on, and test tiles to check exports on, both as raw (un-normalised) arrays so
that each model normalises them with its own statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.bands import DATASETS, DatasetSpec
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import load_federation


def dataset_for(bands: tuple[str, ...]) -> DatasetSpec:
    """The dataset whose band list a model was trained on."""
    for spec in DATASETS.values():
        if spec.band_names == tuple(bands):
            return spec
    known = "; ".join(f"{k}: {', '.join(s.band_names)}" for k, s in DATASETS.items())
    raise ConfigError(f"no dataset has the bands {', '.join(bands)} (known: {known})")


@dataclass(frozen=True)
class OnboardTiles:
    calibration: np.ndarray  # (N, C, H, W) raw reference tiles
    test_x: np.ndarray  # (M, C, H, W) raw test tiles
    test_y: np.ndarray  # (M,) int64 labels


def _spread(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` evenly spaced entries of sorted ``indices`` (all classes kept)."""
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    if limit is None or limit >= len(idx):
        return idx
    if limit < 1:
        raise ConfigError(f"tile limit must be at least 1, got {limit}")
    return idx[np.unique(np.linspace(0, len(idx) - 1, limit).round().astype(np.int64))]


def onboard_tiles(cfg: RunConfig, calibration: int, test_limit: int | None) -> OnboardTiles:
    """``calibration`` reference tiles and at most ``test_limit`` test tiles of ``cfg``'s data."""
    fed = load_federation(cfg)
    ref = _spread(fed.partition.reference, calibration)
    if fed.external_test is not None:
        pick = _spread(np.arange(len(fed.external_test)), test_limit)
        test_x = np.asarray(fed.external_test.images[pick])
        test_y = np.asarray(fed.external_test.labels[pick], dtype=np.int64)
    else:
        pick = _spread(fed.partition.test, test_limit)
        test_x = np.asarray(fed.arrays.images[pick])
        test_y = np.asarray(fed.arrays.labels[pick], dtype=np.int64)
    return OnboardTiles(np.asarray(fed.arrays.images[ref]), test_x, test_y)


def config_for(
    bands: tuple[str, ...], data_dir: str | None, overrides: dict[str, str] | None = None
) -> RunConfig:
    """The default run config on the dataset of ``bands`` (its splits define test/reference)."""
    values: dict[str, object] = {
        **RunConfig().to_mapping(),
        **(overrides or {}),
        "dataset": dataset_for(bands).key,
    }
    if data_dir:
        values["data-dir"] = str(data_dir)
    return RunConfig.from_mapping(values)
