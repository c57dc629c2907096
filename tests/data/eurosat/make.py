"""Generate tiny EuroSAT-like fixture folders with a fixed seed (never real data).

    python tests/data/eurosat/make.py OUT_DIR [--per-class N] [--seed S]

writes ``OUT_DIR/eurosat-rgb`` (3-band uint8 JPEG) and ``OUT_DIR/eurosat-ms`` (13-band uint16
GeoTIFF, UTM), each with ``manifest.csv`` (path,class,sha256). Each class gets a distinct mean
colour plus noise and a class-dependent stripe pattern, so small models can learn it quickly.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from common.bands import CLASSES

SIZE = 64


def _pattern(rng: np.random.Generator, label: int, bands: int, scale: float) -> np.ndarray:
    base = np.linspace(0.15, 0.85, len(CLASSES))[label]
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    stripes = 0.15 * np.sin((xx * (label % 5 + 1) + yy * (label // 5)) * np.pi / 16)
    out = np.empty((bands, SIZE, SIZE), dtype=np.float64)
    for b in range(bands):
        shift = 0.1 * np.cos(label + b)
        out[b] = base + shift + stripes + rng.normal(0, 0.05, (SIZE, SIZE))
    return np.clip(out, 0.0, 1.0) * scale


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_rgb(root: Path, per_class: int, seed: int) -> Path:
    folder = root / "eurosat-rgb"
    rng = np.random.default_rng([seed, 3])
    rows = []
    for label, cls in enumerate(CLASSES):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            data = _pattern(rng, label, 3, 254.0).astype(np.uint8) + 1
            path = folder / cls / f"{cls}_{n}.jpg"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(
                    path,
                    "w",
                    driver="JPEG",
                    width=SIZE,
                    height=SIZE,
                    count=3,
                    dtype="uint8",
                    QUALITY=95,
                ) as dst:
                    dst.write(data)
            rows.append((f"{cls}/{path.name}", cls, _sha256(path)))
    _write_manifest(folder, rows)
    return folder


def write_ms(root: Path, per_class: int, seed: int) -> Path:
    folder = root / "eurosat-ms"
    rng = np.random.default_rng([seed, 13])
    rows = []
    for label, cls in enumerate(CLASSES):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            data = _pattern(rng, label, 13, 4000.0).astype(np.uint16) + 1
            path = folder / cls / f"{cls}_{n}.tif"
            transform = Affine.translation(500000 + 640 * n, 5000000 + 640 * label) @ Affine.scale(
                10.0, -10.0
            )
            with rasterio.open(
                path,
                "w",
                driver="GTiff",
                width=SIZE,
                height=SIZE,
                count=13,
                dtype="uint16",
                crs="EPSG:32632",
                transform=transform,
            ) as dst:
                dst.write(data)
            rows.append((f"{cls}/{path.name}", cls, _sha256(path)))
    _write_manifest(folder, rows)
    return folder


def _write_manifest(folder: Path, rows: list[tuple[str, str, str]]) -> None:
    with (folder / "manifest.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "class", "sha256"])
        writer.writerows(sorted(rows))


def make(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """Write both fixture folders under ``root`` and return ``root``."""
    write_rgb(root, per_class, seed)
    write_ms(root, per_class, seed)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make(args.out, args.per_class, args.seed)


if __name__ == "__main__":
    main()
