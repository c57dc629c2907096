from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.bands import RGB
from common.dataset import BandStats
from common.errors import ConfigError
from common.models import build_model
from common.student_file import load_student, save_student


def test_a_student_file_alone_rebuilds_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", 3, 10)
    stats = BandStats((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    path = save_student(
        tmp_path / "s" / "satellite-00003.pt",
        model,
        arch="tiny",
        role="satellite",
        bands=RGB.band_names,
        classes=RGB.classes,
        stats=stats,
    )
    loaded = load_student(path)
    assert (loaded.arch, loaded.role, loaded.stats) == ("tiny", "satellite", stats)
    assert loaded.bands == RGB.band_names and loaded.classes == RGB.classes
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(loaded.build()(x), model(x))


def test_a_file_that_is_not_a_student_is_refused_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="bad.pt"):
        load_student(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ConfigError, match="format version"):
        load_student(other)
