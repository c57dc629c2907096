"""A tiny MS student trained on the fixture tiles, shared by the on-board and bench tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from common.bands import MS
from common.dataset import BandStats
from common.models import build_model
from common.rasters import decode_folder
from common.student_file import save_student
from common.training import TrainSettings, accuracy, fit


@dataclass(frozen=True)
class TrainedStudent:
    path: Path  # student file
    accuracy: float  # on the fixture tiles it was not trained on


@pytest.fixture(scope="session")
def ms_student(fixture_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedStudent:
    """A satellite (tiny) student trained for a few epochs on 3/4 of the fixture MS tiles."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    arrays = decode_folder(fixture_data / MS.folder, MS)  # no cache: this is session scope
    held = np.arange(len(arrays)) % 4 == 0
    stats = BandStats.from_images(np.asarray(arrays.images[~held]))
    x = stats.normalise(np.asarray(arrays.images))
    y = torch.from_numpy(arrays.labels)
    model = build_model("tiny", MS.num_bands, len(MS.classes))
    fit(model, TrainSettings(epochs=12, batch_size=30, seed=0), x[~held], y[~held])
    score = accuracy(model, x[held], y[held])
    path = tmp_path_factory.mktemp("student") / "satellite-0-r1.pt"
    save_student(
        path,
        model,
        arch="tiny",
        role="satellite",
        bands=MS.band_names,
        classes=MS.classes,
        stats=stats,
    )
    return TrainedStudent(path, score)
