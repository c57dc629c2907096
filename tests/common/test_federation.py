"""The federation's splits, and an external test folder (``--test-dir``) in place of the
internal test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.bands import DATASETS
from common.config import RunConfig
from common.errors import DataNotFoundError
from common.federation import load_federation
from common.rasters import load_folder
from tests.data.eurosat.make import make


def test_a_test_dir_replaces_the_internal_test_split(fixture_data: Path, tmp_path: Path) -> None:
    external = make(tmp_path / "external", per_class=2, seed=7) / "eurosat-rgb"
    internal = load_federation(RunConfig(data_dir=str(fixture_data), num_clients=3))
    fed = load_federation(
        RunConfig(data_dir=str(fixture_data), num_clients=3, test_dir=str(external))
    )
    split = fed.test_split()
    spec = DATASETS["rgb"]
    arrays = load_folder(external, spec)
    assert len(split) == 2 * len(spec.classes)
    assert split.y.tolist() == np.asarray(arrays.labels).tolist()
    # Normalised with the ground archive's statistics, as every other split.
    torch.testing.assert_close(split.x, internal.stats.normalise(np.asarray(arrays.images)))
    # Everything else is the internal data's: same partition, same statistics.
    np.testing.assert_array_equal(fed.partition.test, internal.partition.test)
    assert fed.stats == internal.stats
    assert len(internal.test_split()) == len(internal.partition.test)


def test_a_missing_test_dir_says_which_folder(fixture_data: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError, match=r"test-dir .*nowhere is not a folder"):
        load_federation(RunConfig(data_dir=str(fixture_data), num_clients=3, test_dir=str(missing)))
