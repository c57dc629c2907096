"""skydistill predict: georeferenced class maps of whole scenes, read in bounded windows."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from cli.main import main
from common.errors import BandMismatchError, ConfigError
from common.student_file import load_student
from onboard.artefact import load_classifier
from onboard.export import export_onnx
from onboard.predict import classify_scene, owned_spans, tile_positions
from onboard.scene import NODATA as SCENE_NODATA
from onboard.scene import SceneTruth
from tests.data.scene.make import make as make_scene
from tests.student_fixture import TrainedStudent


def _tile_classes(map_path: Path, truth: SceneTruth) -> np.ndarray:
    """The class painted at the centre of every grid cell of the scene."""
    with rasterio.open(map_path) as src:
        data = src.read(1)
    rows, cols = truth.labels.shape
    out = np.zeros((rows, cols), dtype=np.int64)
    for r in range(rows):
        for c in range(cols):
            y, x = truth.tile_origin(r, c)
            out[r, c] = data[y + 32, x + 32]
    return out


def _true_tiles_accuracy(model_path: Path, truth: SceneTruth) -> float:
    """The model's accuracy on the very tiles of the scene, read straight from it."""
    model = load_classifier(model_path)
    rows, cols = truth.labels.shape
    with rasterio.open(truth.path) as src:
        data = src.read()
    tiles = [
        data[:, y : y + 64, x : x + 64]
        for y, x in (truth.tile_origin(r, c) for r in range(rows) for c in range(cols))
    ]
    pred = model.logits(np.stack(tiles)).argmax(axis=1)
    return float((pred == truth.labels.ravel()).mean())


def test_tiles_cover_the_scene_once() -> None:
    for length, stride in ((320, 64), (300, 64), (300, 32), (64, 64), (130, 17)):
        pos = tile_positions(length, 64, stride)
        assert pos[0] == 0 and pos[-1] == length - 64
        spans = owned_spans(pos, 64, length)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert all(p <= a < b <= p + 64 for p, (a, b) in zip(pos, spans, strict=True))
    assert owned_spans([0, 64, 128], 64, 192) == [(0, 64), (64, 128), (128, 192)]


def test_predict_writes_a_georeferenced_class_map(
    ms_student: TrainedStudent,
    fixture_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    truth = make_scene(tmp_path, rows=3, cols=4, border=64, seed=1, tiles=fixture_data)
    out = tmp_path / "map.tif"
    argv = ["predict", "--model", str(ms_student.path), "--scene", str(truth.path)]
    assert main([*argv, "--out", str(out), "--batch-size", "5"]) == 0
    assert "tiles classified" in capsys.readouterr().out
    with rasterio.open(truth.path) as scene, rasterio.open(out) as cmap:
        assert cmap.crs == scene.crs and cmap.crs.to_epsg() == 32632
        assert cmap.transform == scene.transform
        assert (cmap.width, cmap.height) == (scene.width, scene.height)
        assert cmap.count == 1 and cmap.dtypes[0] == "uint8" and cmap.nodata == 255
        assert json.loads(cmap.tags()["CLASSES"]) == list(truth.classes)
        assert cmap.tags()["CLASS_9"] == "SeaLake"
        assert len(cmap.colormap(1)) >= len(truth.classes)
        data = cmap.read(1)
        scene_nodata = (scene.read() == SCENE_NODATA).all(axis=0)
    b = truth.border
    assert scene_nodata.sum() > 0
    assert (data[scene_nodata] == 255).all()  # the nodata border is preserved
    assert (data[b:-b, b:-b] != 255).all()  # every tile of the mosaic has a class
    assert (data[b:-b, b:-b] < len(truth.classes)).all()
    agreement = float((_tile_classes(out, truth) == truth.labels).mean())
    assert agreement >= _true_tiles_accuracy(ms_student.path, truth) - 0.05
    assert agreement >= ms_student.accuracy - 0.05
    assert out.with_suffix(".png").stat().st_size > 1000


def test_onnx_model_and_overlapping_stride_keep_the_grid_and_nodata(
    ms_student: TrainedStudent, fixture_data: Path, tmp_path: Path
) -> None:
    # border 32: tiles straddle the nodata edge and are classified from their valid pixels
    truth = make_scene(tmp_path, rows=3, cols=3, border=32, seed=2, tiles=fixture_data)
    onnx_path = export_onnx(load_student(ms_student.path), tmp_path / "sat.onnx")
    model = load_classifier(onnx_path)
    stats = classify_scene(model, truth.path, tmp_path / "map.tif", stride=32)
    assert stats.tiles > 0 and stats.nodata_tiles == 0
    with rasterio.open(truth.path) as scene, rasterio.open(tmp_path / "map.tif") as cmap:
        assert cmap.transform == scene.transform and cmap.crs == scene.crs
        data = cmap.read(1)
        scene_nodata = (scene.read() == SCENE_NODATA).all(axis=0)
    assert (data[scene_nodata] == 255).all() and (data[~scene_nodata] != 255).all()
    agreement = float((_tile_classes(tmp_path / "map.tif", truth) == truth.labels).mean())
    assert agreement >= _true_tiles_accuracy(onnx_path, truth) - 0.15  # overlapping tiles vote


def test_a_scene_larger_than_the_budget_is_read_in_small_windows(
    ms_student: TrainedStudent, fixture_data: Path, tmp_path: Path
) -> None:
    truth = make_scene(tmp_path, rows=4, cols=6, border=64, seed=3, tiles=fixture_data)
    model = load_classifier(ms_student.path)
    with rasterio.open(truth.path) as src:
        scene_bytes = src.count * src.width * src.height * 2
    tile_bytes = 13 * 64 * 64 * 2
    budget = 3 * tile_bytes
    small = classify_scene(model, truth.path, tmp_path / "small.tif", max_window_bytes=budget)
    big = classify_scene(model, truth.path, tmp_path / "big.tif", max_window_bytes=scene_bytes)
    assert scene_bytes > 10 * budget
    assert small.max_window_bytes <= budget
    assert small.reads >= (4 + 2) * 3  # 6 tile rows of 8 tiles, at most 3 tiles per read
    assert big.reads == 6  # one read per row of tiles, never the whole scene
    assert big.max_window_bytes < scene_bytes / 4
    with rasterio.open(tmp_path / "small.tif") as a, rasterio.open(tmp_path / "big.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    with pytest.raises(ConfigError, match="--max-window-mb"):
        classify_scene(model, truth.path, tmp_path / "x.tif", max_window_bytes=tile_bytes - 1)


def _write_rgb_scene(path: Path) -> None:
    data = np.random.default_rng(0).integers(1, 255, (3, 128, 128), dtype=np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=128,
        height=128,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=Affine(10, 0, 600000, 0, -10, 5100000),
    ) as dst:
        dst.write(data)


def test_band_mismatch_names_both_band_lists(
    ms_student: TrainedStudent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = tmp_path / "rgb.tif"
    _write_rgb_scene(scene)
    with pytest.raises(BandMismatchError) as info:
        classify_scene(load_classifier(ms_student.path), scene, tmp_path / "map.tif")
    message = str(info.value)
    assert "has 3 bands" in message and "expects 13" in message and "B8A" in message
    argv = ["predict", "--model", str(ms_student.path), "--scene", str(scene)]
    assert main([*argv, "--out", str(tmp_path / "m.tif")]) == 2
    assert "expects 13" in capsys.readouterr().err
