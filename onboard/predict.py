"""Classify every 64 x 64 tile of a scene of any size into a georeferenced class map.

The scene is read with rasterio one row of tiles at a time, and each row in windows of at
most ``max_window_bytes`` (a budget that must hold at least one tile), so a scene larger than
memory can be mapped. Tiles start every ``stride`` pixels; the last tile of a row (column) is
shifted to end at the scene's edge, so every pixel is covered when the scene is at least one
tile wide and high.

Overlapping tiles (``stride`` < 64) are combined by nearest centre: each output pixel takes the
class of the tile whose centre is closest to it (each tile paints the ``stride`` x ``stride``
cell around its centre; the outermost tiles also paint out to the scene's edge). With
``stride`` 64 each tile paints its own 64 x 64 footprint.

Nodata (a pixel whose every band equals the scene's nodata value): a tile made only of nodata
is not classified and stays 255; a tile with some valid pixels is classified after its nodata
pixels are filled with the model's band means (0 after normalisation); every nodata pixel of
the scene is 255 in the map whatever its tile's class.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from common.errors import BandMismatchError, ConfigError, RasterReadError
from onboard.artefact import TileClassifier
from onboard.class_map import NODATA, open_class_map

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 64 * 2**20


@dataclass(frozen=True)
class PredictStats:
    tiles: int  # tiles classified
    nodata_tiles: int  # tiles left out because every pixel is nodata
    reads: int  # rasterio window reads
    max_window_bytes: int  # the largest window read
    budget_bytes: int
    seconds: float
    class_counts: dict[str, int]  # classified tiles per class


def tile_positions(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride`` px, the last one flush with the edge."""
    pos = list(range(0, length - tile + 1, stride))
    if pos[-1] != length - tile:
        pos.append(length - tile)
    return pos


def owned_spans(positions: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """The pixels each tile paints: nearest tile centre (ties go to the earlier tile)."""
    cuts = [0] + [(a + b + tile) // 2 for a, b in itertools.pairwise(positions)]
    return list(zip(cuts, [*cuts[1:], length], strict=True))


def check_bands(src: Any, classifier: TileClassifier, scene: Path) -> None:
    bands = classifier.meta.bands
    names = tuple(d or "" for d in src.descriptions)
    listed = ", ".join(n or f"band {i}" for i, n in enumerate(names, start=1))
    if src.count != len(bands) or (all(names) and names != bands):
        raise BandMismatchError(
            f"{scene} has {src.count} bands ({listed}) but the model "
            f"({classifier.meta.role}, {classifier.meta.arch}) expects {len(bands)} "
            f"({', '.join(bands)}): use a model trained on these bands or a scene with those"
        )


def _tiles_per_read(bands: int, itemsize: int, tile: int, stride: int, budget: int) -> int:
    one = bands * tile * tile * itemsize
    if budget < one:
        raise ConfigError(
            f"window budget {budget:,} bytes is below one {tile} x {tile} x {bands}-band tile "
            f"({one:,} bytes): raise --max-window-mb"
        )
    return 1 + (budget - one) // (bands * tile * stride * itemsize)


class _Runner:
    """Classify tiles in batches; fill nodata pixels with the band means first."""

    def __init__(self, classifier: TileClassifier, batch_size: int) -> None:
        self.classifier = classifier
        self.batch_size = batch_size
        self.means = np.asarray(classifier.meta.stats.mean, dtype=np.float32)

    def classes(self, tiles: np.ndarray, nodata: np.ndarray) -> np.ndarray:
        """Class per tile (N,) of tiles (N, C, T, T) with pixel nodata masks (N, T, T)."""
        out = np.full(len(tiles), NODATA, dtype=np.uint8)
        valid = ~nodata.all(axis=(1, 2))
        if not valid.any():
            return out
        x = tiles[valid].astype(np.float32)
        holes = nodata[valid]
        if holes.any():
            x = np.where(holes[:, None], self.means[None, :, None, None], x)
        out[valid] = self.classifier.logits(x, self.batch_size).argmax(axis=1).astype(np.uint8)
        return out


def classify_scene(
    classifier: TileClassifier,
    scene: Path,
    out: Path,
    *,
    stride: int = 64,
    batch_size: int = 256,
    max_window_bytes: int = DEFAULT_BUDGET,
) -> PredictStats:
    """Write the class map of ``scene`` to ``out`` (GeoTIFF on the scene's grid)."""
    tile = classifier.meta.tile_size
    if not 1 <= stride <= tile:
        raise ConfigError(f"stride must be between 1 and {tile} px, got {stride}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    try:
        src = rasterio.open(scene)
    except RasterioIOError as exc:
        raise RasterReadError(f"{scene}: cannot be read as a raster ({exc})") from exc
    with src:
        check_bands(src, classifier, scene)
        if src.width < tile or src.height < tile:
            raise ConfigError(
                f"{scene} is {src.width} x {src.height} px, smaller than one {tile} x {tile} tile"
            )
        itemsize = np.dtype(src.dtypes[0]).itemsize
        per_read = _tiles_per_read(src.count, itemsize, tile, stride, max_window_bytes)
        xs, ys = tile_positions(src.width, tile, stride), tile_positions(src.height, tile, stride)
        x_spans, y_spans = owned_spans(xs, tile, src.width), owned_spans(ys, tile, src.height)
        runner = _Runner(classifier, batch_size)
        reads = biggest = done = empty = 0
        counts = np.zeros(len(classifier.meta.classes), dtype=np.int64)
        model = f"{classifier.meta.role} {classifier.meta.arch} ({classifier.format})"
        with open_class_map(out, src, classifier.meta.classes, model) as dst:
            for y0, (r0, r1) in zip(ys, y_spans, strict=True):
                strip = np.full((r1 - r0, src.width), NODATA, dtype=np.uint8)
                invalid = np.zeros((r1 - r0, src.width), dtype=bool)
                for j in range(0, len(xs), per_read):
                    group = xs[j : j + per_read]
                    c0, c1 = group[0], group[-1] + tile
                    data = src.read(window=Window(c0, y0, c1 - c0, tile))
                    reads += 1
                    biggest = max(biggest, data.nbytes)
                    if src.nodata is None:
                        mask = np.zeros(data.shape[1:], dtype=bool)
                    else:
                        mask = (data == src.nodata).all(axis=0)
                    invalid[:, c0:c1] = mask[r0 - y0 : r1 - y0]
                    tiles = np.stack([data[:, :, x - c0 : x - c0 + tile] for x in group])
                    holes = np.stack([mask[:, x - c0 : x - c0 + tile] for x in group])
                    classes = runner.classes(tiles, holes)
                    for k, cls in enumerate(classes):
                        a, b = x_spans[j + k]
                        strip[:, a:b] = cls
                    valid = classes != NODATA
                    done += int(valid.sum())
                    empty += int((~valid).sum())
                    counts += np.bincount(classes[valid], minlength=len(counts))
                strip[invalid] = NODATA
                dst.write(strip[None], window=Window(0, r0, src.width, r1 - r0))
    stats = PredictStats(
        tiles=done,
        nodata_tiles=empty,
        reads=reads,
        max_window_bytes=biggest,
        budget_bytes=max_window_bytes,
        seconds=time.perf_counter() - started,
        class_counts={n: int(c) for n, c in zip(classifier.meta.classes, counts, strict=True) if c},
    )
    log.info(
        "%s: %d tiles classified, %d all-nodata tiles left out, %d window reads (largest "
        "%d bytes, budget %d), %.1f s",
        scene,
        stats.tiles,
        stats.nodata_tiles,
        stats.reads,
        stats.max_window_bytes,
        stats.budget_bytes,
        stats.seconds,
    )
    return stats
