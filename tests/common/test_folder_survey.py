"""Data-folder errors say what was found (class folders, extensions, tile sizes), not only what
was expected; tiny rasters written with rasterio in tmp_path."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from common.bands import MS, RGB
from common.errors import DataNotFoundError
from common.folder_survey import survey_folder
from common.rasters import decode_folder, list_files


def tif(path: Path, size: int = 64, bands: int = 13, dtype: str = "uint16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=dtype
        ) as dst:
            dst.write(np.full((bands, size, size), 7, dtype))
    return path


def message(folder: Path, spec=MS) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DataNotFoundError) as info:
        decode_folder(folder, spec)
    return str(info.value)


def test_other_classes_and_sizes_are_listed_against_what_was_expected(tmp_path: Path) -> None:
    for cls in ("clouds", "forest", "Water"):
        tif(tmp_path / cls / f"{cls}_1.tif", size=32)
    (tmp_path / "Water" / "notes.txt").write_text("x")
    text = message(tmp_path)
    assert "expected <Class>/<name>.tif with <Class> among AnnualCrop, Forest" in text
    assert "found sub-folders Water, clouds, forest (classes among them: none)" in text
    assert "files in sub-folders by extension: .tif 3, .txt 1" in text
    assert "rasters sampled: 32x32 px, 13 bands, uint16 3" in text
    assert "rename forest -> Forest" in text and "A ms tile is 64x64 px, 13 bands, uint16" in text


def test_right_classes_of_the_wrong_size_say_which_sizes_were_found(tmp_path: Path) -> None:
    for cls in ("Forest", "River"):
        tif(tmp_path / cls / "a.tif", size=32)
        tif(tmp_path / cls / "b.tif", size=48)
    text = message(tmp_path)
    assert "all 4 files failed (2 x tile is 32x32 px, expected 64x64; 2 x tile is 48x48" in text
    assert "32x32 px, 13 bands, uint16 2" in text and "48x48 px, 13 bands, uint16 2" in text


def test_a_flat_folder_of_tif_files_is_told_to_use_class_sub_folders(tmp_path: Path) -> None:
    for n in range(3):
        tif(tmp_path / f"tile_{n}.tif")
    text = message(tmp_path)
    assert f"directly in {tmp_path}: .tif 3" in text
    assert "3 .tif files lie directly in the folder, not in class sub-folders" in text


def test_a_data_root_is_pointed_at_its_dataset_folder(fixture_data: Path) -> None:
    text = message(fixture_data)
    assert f"looks like a data root: pass {fixture_data / MS.folder}" in text


def test_tiles_nested_below_class_folders_are_reported(tmp_path: Path) -> None:
    tif(tmp_path / "Forest" / "2024" / "a.tif")
    text = message(tmp_path)
    assert "1 files nested deeper" in text and "not in folders below it" in text


def test_tiff_and_upper_case_endings_are_read_as_ms_tiles(tmp_path: Path) -> None:
    tif(tmp_path / "Forest" / "a.TIF")
    tif(tmp_path / "River" / "b.tiff")
    assert list_files(tmp_path, MS) == [("Forest/a.TIF", 1), ("River/b.tiff", 8)]
    assert len(decode_folder(tmp_path, MS)) == 2


def test_unknown_sub_folders_are_ignored_with_a_warning(
    fixture_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(fixture_data / MS.folder / "Forest", tmp_path / "Forest")
    tif(tmp_path / "Clouds" / "c.tif")
    with caplog.at_level("WARNING"):
        assert len(list_files(tmp_path, MS)) == 12
    assert "ignoring sub-folders Clouds" in caplog.text


def test_a_manifest_of_other_classes_says_what_it_lists(tmp_path: Path) -> None:
    tif(tmp_path / "Clouds" / "c.tif")
    (tmp_path / "manifest.csv").write_text("path,class,sha256\nClouds/c.tif,Clouds,0\n")
    with pytest.raises(DataNotFoundError, match="manifest.csv lists 1 files, of classes Clouds"):
        list_files(tmp_path, MS)


def test_survey_of_rgb_tiles_reports_their_kind(fixture_data: Path) -> None:
    survey = survey_folder(fixture_data / RGB.folder, RGB, sample=5)
    assert sum(survey.rasters.values()) == 5
    assert set(survey.rasters) == {"64x64 px, 3 bands, uint8"} and survey.hints() == []
