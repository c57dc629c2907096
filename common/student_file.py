"""A student saved with everything needed to use it: architecture, weights, bands, classes and
the normalisation statistics it was trained with. A student file alone is enough to predict.

:class:`StudentMeta` is that description without the weights; every artefact exported from a
student file carries it too (``onboard/artefact.py``)."""

from __future__ import annotations

import logging
import pickle
import warnings
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import atomic_write
from common.dataset import BandStats
from common.errors import ConfigError
from common.models import build_model

FORMAT_VERSION = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StudentMeta:
    """What using a student takes beside its weights."""

    arch: str  # model zoo name (common/models.py)
    role: str
    bands: tuple[str, ...]
    classes: tuple[str, ...]
    stats: BandStats  # the statistics its input tiles are normalised with
    tile_size: int = 64  # px; not stored in a student file (every dataset's tiles are 64 px)

    @classmethod
    def parse(
        cls,
        *,
        arch: Any,
        role: Any,
        bands: Any,
        classes: Any,
        mean: Any,
        std: Any,
        tile_size: Any = 64,
    ) -> StudentMeta:
        """From plain values (a student file's dict, an artefact's JSON); TypeError or
        ValueError when one has the wrong type."""
        return cls(
            arch=str(arch),
            role=str(role),
            bands=tuple(str(b) for b in bands),
            classes=tuple(str(c) for c in classes),
            stats=BandStats.parse(mean, std),
            tile_size=int(tile_size),
        )


def _meta_values(meta: StudentMeta) -> dict[str, Any]:
    return {f.name: getattr(meta, f.name) for f in fields(StudentMeta)}


@dataclass(frozen=True, kw_only=True)
class StudentFile(StudentMeta):
    """A loaded student file: the metadata and the weights."""

    state: dict[str, torch.Tensor]

    @property
    def meta(self) -> StudentMeta:
        """The metadata alone, without the weights."""
        return StudentMeta(**_meta_values(self))

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


KEYS = ("format_version", "arch", "role", "bands", "classes", "norm_mean", "norm_std", "state_dict")
EXPECTED = (
    "expected a .pt written by skydistill, such as a run's OUT/students/*.pt: a torch zip "
    f"archive of a dict with keys {', '.join(KEYS)}"
)


def _not_a_student(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path} is not a skydistill student file: {what} ({EXPECTED})")


def is_torchscript(path: Path) -> bool:
    """TorchScript archives hold ``<name>/code/`` (a student file is a plain torch.save zip)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def _read_blob(path: Path) -> object:
    """The object in a torch archive, loaded with ``weights_only=True`` (tensors and plain
    values only). Failures say what the file is, never torch's advice to drop that guard."""
    if not path.is_file():
        raise ConfigError(f"student file {path} does not exist (or is not a file)")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(4)
    if not zipfile.is_zipfile(path):
        if size == 0:
            what = "an empty file"
        elif head.startswith(b"PK"):
            what = f"a truncated or corrupt zip archive ({size:,} bytes)"
        elif head.startswith(b"\x80"):
            what = "a plain Python pickle, not a torch zip archive"
        else:
            what = f"not a torch archive at all ({size:,} bytes starting with {head!r})"
        raise _not_a_student(path, what)
    if is_torchscript(path):
        raise _not_a_student(
            path, "it is a TorchScript export; pass the student file it was exported from"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        log.debug("torch.load(%s, weights_only=True): %s", path, exc)
        raise _not_a_student(
            path,
            "it holds Python objects other than tensors and plain values (for example a "
            "whole pickled model), which skydistill does not unpickle",
        ) from None
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as exc:
        log.debug("torch.load(%s, weights_only=True): %s", path, exc)
        raise _not_a_student(
            path, f"a zip archive that torch cannot read ({type(exc).__name__}; truncated?)"
        ) from None


def _describe(blob: object) -> str:
    if not isinstance(blob, dict):
        return f"it holds a {type(blob).__name__}, not a dict"
    names = [str(k) for k in list(blob)[:8]]
    more = f" and {len(blob) - 8} more" if len(blob) > 8 else ""
    found = f"keys {', '.join(names)}{more}" if names else "no keys"
    return f"it holds a dict with {found}"


def load_student(path: Path) -> StudentFile:
    """Read a student file; anything else raises ConfigError saying what the file is not."""
    blob = _read_blob(path)
    if not isinstance(blob, dict) or "format_version" not in blob:
        raise _not_a_student(path, _describe(blob))
    if blob["format_version"] != FORMAT_VERSION:
        raise ConfigError(
            f"{path} is a skydistill student file of format version {blob['format_version']!r}; "
            f"this skydistill reads format version {FORMAT_VERSION}: re-export it with the "
            "skydistill version that wrote it, or retrain"
        )
    missing = [k for k in KEYS if k not in blob]
    if missing:
        raise _not_a_student(path, f"{_describe(blob)}; missing {', '.join(missing)}")
    try:
        meta = StudentMeta.parse(
            arch=blob["arch"],
            role=blob["role"],
            bands=blob["bands"],
            classes=blob["classes"],
            mean=blob["norm_mean"],
            std=blob["norm_std"],
        )
        return StudentFile(**_meta_values(meta), state=dict(blob["state_dict"]))
    except (TypeError, ValueError) as exc:
        raise _not_a_student(path, f"a value has the wrong type ({exc})") from exc
