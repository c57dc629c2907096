"""A student saved with everything needed to use it: architecture, weights, bands, classes and
the normalisation statistics it was trained with. A student file alone is enough to predict."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import atomic_write
from common.dataset import BandStats
from common.errors import ConfigError
from common.models import build_model

FORMAT_VERSION = 1


@dataclass(frozen=True)
class StudentFile:
    arch: str
    role: str
    bands: tuple[str, ...]
    classes: tuple[str, ...]
    stats: BandStats
    state: dict[str, torch.Tensor]

    def build(self) -> nn.Module:
        model = build_model(self.arch, len(self.bands), len(self.classes))
        model.load_state_dict(self.state)
        model.eval()
        return model


def save_student(
    path: Path,
    model: nn.Module,
    *,
    arch: str,
    role: str,
    bands: tuple[str, ...],
    classes: tuple[str, ...],
    stats: BandStats,
) -> Path:
    blob: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "role": role,
        "bands": list(bands),
        "classes": list(classes),
        "norm_mean": list(stats.mean),
        "norm_std": list(stats.std),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: torch.save(blob, fh))


def load_student(path: Path) -> StudentFile:
    try:
        blob = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"cannot read student file {path}: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{path} is not a skydistill student file of format version {FORMAT_VERSION}"
        )
    try:
        return StudentFile(
            arch=str(blob["arch"]),
            role=str(blob["role"]),
            bands=tuple(blob["bands"]),
            classes=tuple(blob["classes"]),
            stats=BandStats(tuple(blob["norm_mean"]), tuple(blob["norm_std"])),
            state=dict(blob["state_dict"]),
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"student file {path} lacks {exc}") from exc
