"""Read labelled raster folders with rasterio, once, into a cache keyed by the data manifest.

A folder holds one sub-folder per class (``<Class>/<file>``) and optionally ``manifest.csv``
(``path,class,sha256``). Decoding 17,000 JPEG tiles takes 10-20 s, so the decoded arrays are cached
as ``.npy`` files under ``SKYDISTILL_CACHE`` and memory-mapped by every process afterwards.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from common.atomic import atomic_write
from common.bands import DatasetSpec
from common.errors import BandMismatchError, DataNotFoundError, RasterReadError
from common.folder_survey import is_tile, survey_folder
from common.settings import cache_dir

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass(frozen=True)
class LabelledArrays:
    """Decoded tiles (N, C, H, W) in their native dtype with integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray
    spec: DatasetSpec
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


# GDAL lists a raster's folder on every open, looking for sidecar files (.aux.xml, .ovr,
# .msk); in a class folder of 1,700 tiles that listing costs more than decoding the tile
# (1,000 EuroSAT JPEGs on two threads: 1.4-1.7 s with it, 0.66-0.68 s without; a cold
# ``make run``'s data phase, which also writes the cache: 20.6 s -> 17.1 s). A tile's bands,
# dtype and nodata are in the file itself, so the decoder opens each file alone.
READ_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


def read_raster(path: Path, spec: DatasetSpec) -> np.ndarray:
    """Read one tile as (C, H, W) in the dataset's dtype, or raise a typed error saying why."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return _read_raster(path, spec)


def _read_raster(path: Path, spec: DatasetSpec) -> np.ndarray:
    """:func:`read_raster` without its warning filter (``catch_warnings`` is process-wide and
    not thread-safe: :func:`decode_folder` sets it once around its decoding threads)."""
    try:
        with rasterio.Env(**READ_OPTIONS), rasterio.open(path) as src:
            if src.count != spec.num_bands:
                raise BandMismatchError(
                    f"{path}: has {src.count} bands, the {spec.key} dataset expects "
                    f"{spec.num_bands} ({', '.join(spec.band_names)})"
                )
            if src.dtypes[0] != spec.dtype:
                raise BandMismatchError(
                    f"{path}: pixels are {src.dtypes[0]}, the {spec.key} dataset expects "
                    f"{spec.dtype}"
                )
            data: np.ndarray = src.read()
            nodata = src.nodata
    except RasterioIOError as exc:
        raise RasterReadError(f"{path}: cannot be read as a raster ({exc})") from exc
    if nodata is not None and bool(np.all(data == nodata)):
        raise RasterReadError(f"{path}: every pixel is nodata ({nodata}): nothing to learn from")
    if data.shape[1:] != (spec.tile_size, spec.tile_size):
        raise BandMismatchError(
            f"{path}: tile is {data.shape[1]}x{data.shape[2]} px, expected "
            f"{spec.tile_size}x{spec.tile_size}"
        )
    return data


def list_files(folder: Path, spec: DatasetSpec) -> list[tuple[str, int]]:
    """(relative path, label) of every tile, from ``manifest.csv`` or by scanning class folders
    (``<Class>/<name>.tif``; the ending in any case, ``.tiff``/``.jpeg`` too)."""
    if not folder.is_dir():
        raise DataNotFoundError(
            f"Dataset not found in {folder}: set SKYDISTILL_DATA (or pass --data-dir) to the "
            f"folder holding {spec.folder}/, or download it with "
            f"`skydistill data fetch eurosat --to DIR`"
        )
    index = {name: i for i, name in enumerate(spec.classes)}
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            rows = [(r["path"], r["class"]) for r in csv.DictReader(fh)]
    else:
        rows = [
            (p.relative_to(folder).as_posix(), p.parent.name)
            for p in sorted(folder.glob("*/*"))
            if p.is_file() and is_tile(p, spec)
        ]
        _warn_ignored(folder, tuple(sorted({c for _, c in rows} - set(index))))
    files = [(path, index[cls]) for path, cls in rows if cls in index]
    if not files:
        seen = ", ".join(sorted({c for _, c in rows})) or "none"
        source = (
            f"{manifest} lists {len(rows)} files, of classes {seen}"
            if manifest.is_file()
            else survey_folder(folder, spec).describe()
        )
        raise DataNotFoundError(
            f"No {spec.suffix} tiles of the {spec.key} classes in {folder}: expected "
            f"<Class>/<name>{spec.suffix} with <Class> among {', '.join(spec.classes)}; "
            f"{source}"
        )
    return sorted(files)


@functools.lru_cache(maxsize=64)
def _warn_ignored(folder: Path, names: tuple[str, ...]) -> None:
    if names:
        log.warning(
            "ignoring sub-folders %s of %s: not classes of the dataset", ", ".join(names), folder
        )


def _cache_key(folder: Path, spec: DatasetSpec, files: list[tuple[str, int]]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{spec}|{folder.resolve()}".encode())
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        h.update(manifest.read_bytes())
    else:
        for path, label in files:
            st = (folder / path).stat()
            h.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _read_or_reason(path: Path, spec: DatasetSpec) -> np.ndarray | str:
    """The tile, or why it cannot be used (the reason a skipped file is logged with)."""
    try:
        return _read_raster(path, spec)
    except (RasterReadError, BandMismatchError) as exc:
        return str(exc)


def decode_folder(folder: Path, spec: DatasetSpec) -> LabelledArrays:
    """Decode every tile; unreadable or mismatched files are skipped, counted and logged.

    GDAL decodes outside the GIL, so a thread per core decodes in parallel (17,000 JPEG
    tiles: about 17 s on two, cache write included); the order stays the files' order."""
    files = list_files(folder, spec)
    images: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        decoded = pool.map(lambda f: _read_or_reason(folder / f[0], spec), files, chunksize=64)
        for (rel, label), tile in zip(files, decoded, strict=True):
            if isinstance(tile, str):
                skipped.append((rel, tile))
                log.warning("skipping %s", tile)
            else:
                images.append(tile)
                labels.append(label)
    if not images:
        reasons = Counter(reason.split(": ", 1)[-1] for _, reason in skipped)
        top = "; ".join(f"{n} x {why}" for why, n in reasons.most_common(3))
        raise DataNotFoundError(
            f"no readable tiles in {folder}: all {len(files)} files failed ({top}); "
            f"{survey_folder(folder, spec).describe()}"
        )
    if skipped:
        log.warning("%d of %d files in %s were skipped", len(skipped), len(files), folder)
    return LabelledArrays(
        images=np.stack(images),
        labels=np.asarray(labels, np.int64),
        spec=spec,
        skipped=tuple(skipped),
    )


def load_folder(folder: Path, spec: DatasetSpec, use_cache: bool = True) -> LabelledArrays:
    """Decode a labelled folder once, then memory-map the cached arrays."""
    files = list_files(folder, spec)
    if not use_cache:
        return decode_folder(folder, spec)
    key = _cache_key(folder, spec, files)
    img_path = cache_dir() / f"{spec.key}-{key}-images.npy"
    lab_path = cache_dir() / f"{spec.key}-{key}-labels.npy"
    if img_path.is_file() and lab_path.is_file():
        return LabelledArrays(
            images=np.load(img_path, mmap_mode="r"), labels=np.load(lab_path), spec=spec
        )
    log.info("decoding %d %s tiles from %s (cached for next time)", len(files), spec.key, folder)
    arrays = decode_folder(folder, spec)
    atomic_write(img_path, lambda fh: np.save(fh, arrays.images))
    atomic_write(lab_path, lambda fh: np.save(fh, arrays.labels))
    return arrays
