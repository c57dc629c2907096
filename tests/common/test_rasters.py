from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from common.bands import MS, RGB
from common.errors import BandMismatchError, DataNotFoundError, RasterReadError
from common.rasters import load_folder, read_raster


@pytest.mark.parametrize(("spec", "dtype"), [(RGB, np.uint8), (MS, np.uint16)])
def test_reads_fixture_folders(fixture_data: Path, spec, dtype) -> None:  # type: ignore[no-untyped-def]
    arrays = load_folder(fixture_data / spec.folder, spec, use_cache=False)
    assert arrays.images.shape == (120, spec.num_bands, 64, 64)
    assert arrays.images.dtype == dtype
    assert np.bincount(arrays.labels).tolist() == [12] * 10
    assert not arrays.skipped


def test_ms_band_layout_is_declared_with_b8a_last() -> None:
    assert MS.num_bands == 13 and MS.band_names[-1] == "B8A"
    assert [b.name for b in RGB.bands] == ["B04", "B03", "B02"]


def test_cache_returns_identical_arrays(fixture_data: Path) -> None:
    first = load_folder(fixture_data / MS.folder, MS)
    second = load_folder(fixture_data / MS.folder, MS)
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(second.images))
    np.testing.assert_array_equal(first.labels, second.labels)


def test_corrupt_file_is_rejected_with_its_path(fixture_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Forest_1.tif"
    good = fixture_data / MS.folder / "Forest" / "Forest_1.tif"
    bad.write_bytes(good.read_bytes()[:1000])  # truncated
    with pytest.raises(RasterReadError, match="Forest_1.tif"):
        read_raster(bad, MS)
    garbage = tmp_path / "River_1.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(RasterReadError, match="River_1.jpg"):
        read_raster(garbage, RGB)


def test_wrong_band_count_is_named(fixture_data: Path) -> None:
    with pytest.raises(BandMismatchError, match="has 13 bands.*expects 3"):
        read_raster(fixture_data / MS.folder / "Forest" / "Forest_1.tif", RGB)


def test_folder_with_a_bad_file_skips_and_counts_it(fixture_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "eurosat-ms"
    shutil.copytree(fixture_data / MS.folder, folder)
    (folder / "Forest" / "Forest_2.tif").write_bytes(b"\x00" * 100)
    with rasterio.open(
        folder / "River" / "River_3.tif",
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=4,
        dtype="uint16",
    ) as dst:
        dst.write(np.ones((4, 64, 64), np.uint16))
    arrays = load_folder(folder, MS, use_cache=False)
    assert len(arrays) == 118
    reasons = dict(arrays.skipped)
    assert set(reasons) == {"Forest/Forest_2.tif", "River/River_3.tif"}
    assert "4 bands" in reasons["River/River_3.tif"]


def test_missing_or_empty_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="SKYDISTILL_DATA"):
        load_folder(tmp_path / "nowhere", RGB)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="No .jpg tiles"):
        load_folder(tmp_path / "empty", RGB)


def test_reads_a_three_band_geotiff_with_the_rgb_layout(tmp_path: Path) -> None:
    from affine import Affine

    path = tmp_path / "Forest_9.tif"
    data = np.random.default_rng(0).integers(1, 255, (3, 64, 64), dtype=np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=Affine.translation(500000, 5000000) @ Affine.scale(10, -10),
    ) as dst:
        dst.write(data)
    np.testing.assert_array_equal(read_raster(path, RGB), data)
    with pytest.raises(BandMismatchError, match="has 3 bands.*expects 13"):
        read_raster(path, MS)


def test_wrong_dtype_and_size_are_named(tmp_path: Path) -> None:
    path = tmp_path / "a.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=64, height=64, count=13, dtype="float32"
    ) as d:
        d.write(np.zeros((13, 64, 64), np.float32))
    with pytest.raises(BandMismatchError, match="float32.*expects uint16"):
        read_raster(path, MS)
    path = tmp_path / "b.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=32, height=64, count=13, dtype="uint16"
    ) as d:
        d.write(np.zeros((13, 64, 32), np.uint16))
    with pytest.raises(BandMismatchError, match="64x32 px"):
        read_raster(path, MS)


def test_all_nodata_tile_is_refused_but_partly_nodata_is_read(tmp_path: Path) -> None:
    def write(path: Path, data: np.ndarray) -> Path:
        with rasterio.open(
            path, "w", driver="GTiff", width=64, height=64, count=13, dtype="uint16", nodata=0
        ) as dst:
            dst.write(data)
        return path

    empty = write(tmp_path / "empty.tif", np.zeros((13, 64, 64), np.uint16))
    with pytest.raises(RasterReadError, match="every pixel is nodata"):
        read_raster(empty, MS)
    partial = np.zeros((13, 64, 64), np.uint16)
    partial[:, :10, :10] = 500
    assert read_raster(write(tmp_path / "partial.tif", partial), MS).max() == 500
