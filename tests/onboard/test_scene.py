"""skydistill data scene: a seeded, georeferenced mosaic of labelled tiles with a nodata border."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from cli.main import main
from common.bands import MS
from common.rasters import read_raster
from onboard.scene import NODATA, load_truth


def test_scene_is_a_georeferenced_mosaic_of_its_source_tiles(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scene.tif"
    argv = ["data", "scene", "--data-dir", str(fixture_data), "--out", str(out)]
    assert main([*argv, "--rows", "2", "--cols", "3", "--border", "64", "--seed", "5"]) == 0
    assert "truth" in capsys.readouterr().out
    truth = load_truth(out)
    raw = json.loads(out.with_suffix(".json").read_text())
    assert truth.labels.shape == (2, 3) and truth.classes == MS.classes
    with rasterio.open(out) as src:
        assert (src.width, src.height, src.count) == (3 * 64 + 128, 2 * 64 + 128, 13)
        assert src.crs.to_epsg() == 32632 and src.nodata == NODATA
        assert src.transform == Affine(10, 0, 600_000, 0, -10, 5_100_000)
        assert src.descriptions == MS.band_names
        data = src.read()
    inner = np.zeros(data.shape[1:], dtype=bool)
    inner[64:-64, 64:-64] = True
    assert (data[:, ~inner] == NODATA).all() and (data[:, inner] != NODATA).all()
    for r in range(2):
        for c in range(3):
            y, x = truth.tile_origin(r, c)
            source = fixture_data / MS.folder / raw["sources"][r][c]
            assert source.parent.name == MS.classes[truth.labels[r, c]]
            assert np.array_equal(data[:, y : y + 64, x : x + 64], read_raster(source, MS))
    again = tmp_path / "again.tif"
    assert main([*argv[:-1], str(again), "--rows", "2", "--cols", "3", "--seed", "5"]) == 0
    assert np.array_equal(load_truth(again).labels, truth.labels)  # seeded
