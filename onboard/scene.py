"""Assemble labelled 64 x 64 tiles into one georeferenced scene with a nodata border.

A test scene for ``skydistill predict``: a ``rows`` x ``cols`` grid of tiles drawn (seeded,
with replacement) from a labelled folder, surrounded by ``border`` pixels of nodata (0, which
EuroSAT MS never uses: its values start at 1), in UTM zone 32N (EPSG:32632) at 10 m. The
scene is written one tile row at a time. Its ground truth, the class of every grid cell, is
written beside it as ``SCENE.json`` (``labels``: rows of class indices, ``border``,
``tile_size``, ``classes``, ``sources``).

    skydistill data scene --rows 16 --cols 16 --out scene.tif   # real EuroSAT MS tiles
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from common.bands import MS, DatasetSpec
from common.errors import ConfigError
from common.rasters import list_files, read_raster

log = logging.getLogger(__name__)

NODATA = 0
CRS = "EPSG:32632"
ORIGIN = (600_000.0, 5_100_000.0)  # upper-left corner, metres (UTM 32N)
PIXEL_M = 10.0


@dataclass(frozen=True)
class SceneTruth:
    """Where the tiles of a scene came from and what they are."""

    path: Path
    labels: np.ndarray  # (rows, cols) class index of each grid cell
    border: int
    tile_size: int
    classes: tuple[str, ...]

    def tile_origin(self, row: int, col: int) -> tuple[int, int]:
        """(y, x) pixel offset of grid cell (row, col) in the scene."""
        return self.border + row * self.tile_size, self.border + col * self.tile_size


def truth_path(scene: Path) -> Path:
    return scene.with_suffix(".json")


def load_truth(scene: Path) -> SceneTruth:
    raw = json.loads(truth_path(scene).read_text())
    return SceneTruth(
        path=scene,
        labels=np.asarray(raw["labels"], dtype=np.int64),
        border=int(raw["border"]),
        tile_size=int(raw["tile_size"]),
        classes=tuple(raw["classes"]),
    )


def make_scene(
    folder: Path,
    out: Path,
    *,
    spec: DatasetSpec = MS,
    rows: int = 8,
    cols: int = 8,
    border: int = 64,
    seed: int = 0,
) -> SceneTruth:
    """Write a ``rows`` x ``cols`` mosaic of tiles from ``folder`` to ``out`` (GeoTIFF)."""
    if rows < 1 or cols < 1 or border < 0:
        raise ConfigError(
            f"scene needs rows, cols >= 1 and border >= 0, got {rows}, {cols}, {border}"
        )
    files = list_files(folder, spec)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(files), size=(rows, cols))
    size = spec.tile_size
    height, width = rows * size + 2 * border, cols * size + 2 * border
    transform = Affine.translation(*ORIGIN) @ Affine.scale(PIXEL_M, -PIXEL_M)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": spec.num_bands,
        "dtype": spec.dtype,
        "crs": CRS,
        "transform": transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "interleave": "pixel",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = np.zeros((rows, cols), dtype=np.int64)
    sources: list[list[str]] = []
    band = np.full((spec.num_bands, size, width), NODATA, dtype=spec.dtype)
    with rasterio.open(out, "w", **profile) as dst:
        for i, name in enumerate(spec.band_names, start=1):
            dst.set_band_description(i, name)
        if border:
            edge = np.full((spec.num_bands, border, width), NODATA, dtype=spec.dtype)
            dst.write(edge, window=((0, border), (0, width)))
            dst.write(edge, window=((height - border, height), (0, width)))
        for r in range(rows):
            band[:] = NODATA
            row_sources = []
            for c in range(cols):
                rel, label = files[int(picks[r, c])]
                x0 = border + c * size
                band[:, :, x0 : x0 + size] = read_raster(folder / rel, spec)
                labels[r, c] = label
                row_sources.append(rel)
            sources.append(row_sources)
            y0 = border + r * size
            dst.write(band, window=((y0, y0 + size), (0, width)))
    truth = SceneTruth(out, labels, border, size, spec.classes)
    text = {
        "labels": labels.tolist(),
        "border": border,
        "tile_size": size,
        "classes": list(spec.classes),
        "sources": sources,
    }
    truth_path(out).write_text(json.dumps(text, indent=1))
    log.info(
        "scene %s: %d x %d tiles, %d x %d px, border %d", out, rows, cols, width, height, border
    )
    return truth
