"""Assemble a small georeferenced test scene from generated fixture tiles (seeded, never real).

    python tests/data/scene/make.py OUT_DIR [--rows R] [--cols C] [--border B] [--seed S]

writes the fixture folders (``tests/data/eurosat/make.py``) under ``OUT_DIR`` if missing, then
``OUT_DIR/scene.tif``: a ``rows`` x ``cols`` mosaic of 13-band uint16 fixture MS tiles with
``border`` pixels of nodata (0) around it, EPSG:32632, 10 m pixels, upper-left corner
(600000, 5100000); and ``OUT_DIR/scene.json``, the true class of every tile.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from onboard.scene import SceneTruth, make_scene
from tests.data.eurosat.make import write_ms


def make(
    root: Path,
    rows: int = 3,
    cols: int = 4,
    border: int = 64,
    seed: int = 0,
    name: str = "scene.tif",
    tiles: Path | None = None,
) -> SceneTruth:
    """Write ``root/name`` from the fixture data root ``tiles`` (default: generated under
    ``root`` if it has none) and return its truth."""
    data = tiles or root
    if not (data / "eurosat-ms").is_dir():
        write_ms(data, per_class=12, seed=seed)
    return make_scene(
        data / "eurosat-ms", root / name, rows=rows, cols=cols, border=border, seed=seed
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--cols", type=int, default=4)
    parser.add_argument("--border", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make(args.out, args.rows, args.cols, args.border, args.seed)


if __name__ == "__main__":
    main()
