"""The class-map GeoTIFF ``skydistill predict`` writes, and its PNG preview.

One uint8 band at the scene's resolution (same CRS, transform and size as the scene), value
= class index, 255 = nodata; a colour table; the class names as the band's description and as
tags (``CLASSES``: JSON list, ``CLASS_<i>``: name) so GIS tools and ``rasterio`` can show them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

NODATA = 255

# EuroSAT classes in colours a map reader expects; other class names get a tab20 colour.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "AnnualCrop": (240, 200, 60),
    "Forest": (20, 110, 40),
    "HerbaceousVegetation": (150, 200, 90),
    "Highway": (120, 120, 120),
    "Industrial": (150, 60, 160),
    "Pasture": (200, 235, 120),
    "PermanentCrop": (230, 130, 40),
    "Residential": (210, 40, 40),
    "River": (60, 140, 230),
    "SeaLake": (20, 50, 140),
}


def colours(classes: tuple[str, ...]) -> list[tuple[int, int, int]]:
    import matplotlib

    tab = matplotlib.colormaps["tab20"]
    out = []
    for i, name in enumerate(classes):
        if name in CLASS_COLOURS:
            out.append(CLASS_COLOURS[name])
        else:
            r, g, b, _ = tab(i % 20)
            out.append((int(255 * r), int(255 * g), int(255 * b)))
    return out


def map_profile(scene: Any) -> dict[str, Any]:
    """Profile of a class map for the open rasterio dataset ``scene`` (same grid)."""
    return {
        "driver": "GTiff",
        "width": scene.width,
        "height": scene.height,
        "count": 1,
        "dtype": "uint8",
        "crs": scene.crs,
        "transform": scene.transform,
        "nodata": NODATA,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }


def open_class_map(out: Path, scene: Any, classes: tuple[str, ...], model: str) -> Any:
    """An open, writable class map on ``scene``'s grid with colours and class names set."""
    if len(classes) >= NODATA:
        raise ValueError(f"a uint8 class map holds at most {NODATA} classes")
    out.parent.mkdir(parents=True, exist_ok=True)
    dst = rasterio.open(out, "w", **map_profile(scene))
    table = {i: (*c, 255) for i, c in enumerate(colours(classes))}
    table[NODATA] = (0, 0, 0, 0)
    dst.write_colormap(1, table)
    dst.set_band_description(1, "class: " + ", ".join(f"{i}={n}" for i, n in enumerate(classes)))
    dst.update_tags(
        CLASSES=json.dumps(list(classes)),
        MODEL=model,
        NODATA_MEANING="no prediction: tile entirely nodata in the scene, or pixel nodata",
        **{f"CLASS_{i}": name for i, name in enumerate(classes)},
    )
    return dst


def write_preview(map_path: Path, png: Path, max_side: int = 1024) -> Path:
    """A PNG of the class map (decimated to at most ``max_side`` px) with a legend."""
    with rasterio.open(map_path) as src:
        scale = max(1.0, max(src.width, src.height) / max_side)
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        data = src.read(1, out_shape=shape, resampling=Resampling.nearest)
        classes = tuple(json.loads(src.tags()["CLASSES"]))
        title = f"{map_path.name} ({src.width} x {src.height} px, {src.crs})"
    return plot_class_map(np.asarray(data), classes, colours(classes), png, title, NODATA)


def plot_class_map(
    data: np.ndarray,
    classes: tuple[str, ...],
    colours: list[tuple[int, int, int]],
    path: Path,
    title: str,
    nodata: int = 255,
) -> Path:
    """A class map (class index per pixel, ``nodata`` shown white) with a legend of classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rgb = np.full((*data.shape, 3), 255, dtype=np.uint8)
    for i, colour in enumerate(colours):
        rgb[data == i] = colour
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])  # keep the frame: white nodata must not vanish into the page
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    present = set(np.unique(data).tolist())
    handles = [
        Patch(
            color=(c[0] / 255, c[1] / 255, c[2] / 255),
            label=name + ("" if i in present else " (absent)"),
        )
        for i, (name, c) in enumerate(zip(classes, colours, strict=True))
    ]
    handles.append(Patch(facecolor="white", edgecolor="grey", label="nodata"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
