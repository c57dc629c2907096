"""An edge node's own imagery: check a local labelled folder, then split it for training.

The folder holds one sub-folder per class (``<Class>/<tile>``), read with rasterio exactly like
the public archive (:mod:`common.rasters`). The agent checks it before joining the federation
(:func:`inspect_folder`); the ClientApp trains on it (:func:`local_splits`), normalised with
the band statistics the server sends, instead of a simulation partition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.bands import DatasetSpec
from common.federation import Federation, Split
from common.partition import split_holdout
from common.rasters import decode_folder, load_folder


@dataclass(frozen=True)
class FolderReport:
    """What an agent found in its data folder."""

    folder: Path
    dataset: str
    bands: tuple[str, ...]
    tiles: int
    per_class: dict[str, int]
    skipped: tuple[tuple[str, str], ...]

    def summary(self) -> str:
        classes = ", ".join(f"{name} {n}" for name, n in self.per_class.items())
        lines = [
            f"{self.folder}: {self.tiles} usable {self.dataset} tiles in {len(self.per_class)} "
            f"classes ({classes}); bands {', '.join(self.bands)}; {len(self.skipped)} files "
            "skipped"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def inspect_folder(folder: Path, spec: DatasetSpec) -> FolderReport:
    """Decode every tile of ``folder`` (raises DataNotFoundError when nothing is usable)."""
    arrays = decode_folder(folder, spec)
    counts = Counter(int(label) for label in arrays.labels)
    return FolderReport(
        folder=folder,
        dataset=spec.key,
        bands=tuple(spec.band_names),
        tiles=len(arrays),
        per_class={spec.classes[i]: counts[i] for i in sorted(counts)},
        skipped=arrays.skipped,
    )


def local_splits(
    fed: Federation, folder: Path, holdout_fraction: float, seed: int, node: int
) -> tuple[Split, Split]:
    """(train, held-out) splits of a local folder, normalised with ``fed.stats``."""
    arrays = load_folder(folder, fed.spec)
    train, holdout = split_holdout(np.arange(len(arrays)), holdout_fraction, seed, node)

    def split(idx: np.ndarray) -> Split:
        return Split(
            x=fed.stats.normalise(np.asarray(arrays.images[idx])),
            y=torch.from_numpy(np.asarray(arrays.labels[idx], dtype=np.int64)),
        )

    return split(train), split(holdout)
