"""What a data folder actually holds, for errors that say what was found, not only what was
expected: sub-folder names against the dataset's classes, file extensions by depth, and the
size, band count and dtype of a sample of its rasters (read with rasterio)."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from common.bands import DatasetSpec

# File name endings read as tiles of a dataset whose declared suffix is the key (any case).
SUFFIX_ALIASES: dict[str, tuple[str, ...]] = {
    ".tif": (".tif", ".tiff"),
    ".jpg": (".jpg", ".jpeg"),
}
RASTER_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png", ".jp2")
MAX_LISTED = 12


def tile_suffixes(spec: DatasetSpec) -> tuple[str, ...]:
    """The lower-case file endings accepted as tiles of ``spec``."""
    return SUFFIX_ALIASES.get(spec.suffix.lower(), (spec.suffix.lower(),))


def is_tile(path: Path, spec: DatasetSpec) -> bool:
    return path.suffix.lower() in tile_suffixes(spec)


def _listing(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return (shown + more) or "none"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common(MAX_LISTED)) or "none"


def _raster_kind(path: Path) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return f"{src.width}x{src.height} px, {src.count} bands, {src.dtypes[0]}"
    except RasterioIOError:
        return "unreadable"


@dataclass(frozen=True)
class FolderSurvey:
    folder: Path
    spec: DatasetSpec
    subfolders: tuple[str, ...]
    top_level: Counter[str]  # extension -> files directly in the folder
    in_subfolders: Counter[str]  # extension -> files in <sub-folder>/
    deeper: int  # files below <sub-folder>/<sub-sub-folder>/
    rasters: Counter[str]  # "WxH px, N bands, dtype" -> sampled rasters of that kind

    def describe(self) -> str:
        """One paragraph: what was found, then hints about what to change."""
        matching = [n for n in self.subfolders if n in self.spec.classes]
        parts = [
            f"found sub-folders {_listing(self.subfolders)} (classes among them: "
            f"{_listing(matching)})",
            f"files in sub-folders by extension: {_counts(self.in_subfolders)}",
        ]
        if self.top_level:
            parts.append(f"directly in {self.folder}: {_counts(self.top_level)}")
        if self.deeper:
            parts.append(f"{self.deeper} files nested deeper than <sub-folder>/<file>")
        if self.rasters:
            parts.append(f"rasters sampled: {_counts(self.rasters)}")
        return "; ".join(parts) + "." + "".join(f" {h}" for h in self.hints())

    def hints(self) -> list[str]:
        spec, out = self.spec, []
        if (self.folder / spec.folder).is_dir():
            out.append(f"{self.folder} looks like a data root: pass {self.folder / spec.folder}.")
        by_lower = {c.lower(): c for c in spec.classes}
        renames = [
            f"{n} -> {by_lower[n.lower()]}"
            for n in self.subfolders
            if n not in spec.classes and n.lower() in by_lower
        ]
        if renames:
            out.append(f"Class folder names are case-sensitive: rename {', '.join(renames)}.")
        loose = sum(n for ext, n in self.top_level.items() if ext.lower() in tile_suffixes(spec))
        if loose:
            out.append(
                f"{loose} {spec.suffix} files lie directly in the folder, not in class "
                "sub-folders: skydistill reads labelled tiles, each in a sub-folder named after "
                "its class."
            )
        tiles_inside = sum(
            n for ext, n in self.in_subfolders.items() if ext.lower() in tile_suffixes(spec)
        )
        if self.deeper and not tiles_inside:
            out.append("Tiles must lie directly in <Class>/, not in folders below it.")
        expected = f"{spec.tile_size}x{spec.tile_size} px, {spec.num_bands} bands, {spec.dtype}"
        if self.rasters and expected not in self.rasters:
            out.append(f"A {spec.key} tile is {expected}.")
        return out


def survey_folder(folder: Path, spec: DatasetSpec, sample: int = 32) -> FolderSurvey:
    """Look at ``folder`` (not recursively beyond two levels, reading at most ``sample``
    rasters); cheap enough to run when an error is about to be raised."""
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    top = Counter(p.suffix or "(none)" for p in folder.glob("*") if p.is_file())
    inner = [p for p in folder.glob("*/*") if p.is_file()]
    deeper = sum(1 for p in folder.glob("*/*/**/*") if p.is_file())
    candidates = [p for p in inner if p.suffix.lower() in RASTER_SUFFIXES]
    candidates += [p for p in folder.glob("*") if p.suffix.lower() in RASTER_SUFFIXES]
    step = max(1, len(candidates) // sample)
    rasters = Counter(_raster_kind(p) for p in sorted(candidates)[::step][:sample])
    return FolderSurvey(
        folder=folder,
        spec=spec,
        subfolders=tuple(subfolders),
        top_level=top,
        in_subfolders=Counter(p.suffix or "(none)" for p in inner),
        deeper=deeper,
        rasters=rasters,
    )
