"""A deployable model of any format (student file, TorchScript, ONNX) behind one interface.

Every exported artefact carries the metadata needed to use it: architecture, role, bands,
classes and normalisation statistics. It is embedded (TorchScript extra file
``skydistill.json``, ONNX ``metadata_props``) and also written beside it as ``PATH.json``.
:func:`load_classifier` takes any of the three and returns a :class:`TileClassifier` that
normalises raw tiles with the statistics the model was trained with.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.dataset import BandStats
from common.errors import ConfigError
from common.student_file import StudentFile, load_student

META_KEY = "skydistill"
FORMATS = ("torch", "torchscript", "onnx", "onnx-int8")


@dataclass(frozen=True)
class ModelMeta:
    """What a deployed model needs beside its weights."""

    arch: str
    role: str
    bands: tuple[str, ...]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    format: str = "torch"
    tile_size: int = 64

    @property
    def stats(self) -> BandStats:
        return BandStats(self.mean, self.std)

    @classmethod
    def of_student(cls, student: StudentFile, fmt: str = "torch") -> ModelMeta:
        return cls(
            arch=student.arch,
            role=student.role,
            bands=student.bands,
            classes=student.classes,
            mean=student.stats.mean,
            std=student.stats.std,
            format=fmt,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str) -> ModelMeta:
        try:
            raw: dict[str, Any] = json.loads(text)
            return cls(
                arch=str(raw["arch"]),
                role=str(raw["role"]),
                bands=tuple(str(b) for b in raw["bands"]),
                classes=tuple(str(c) for c in raw["classes"]),
                mean=tuple(float(m) for m in raw["mean"]),
                std=tuple(float(s) for s in raw["std"]),
                format=str(raw.get("format", "torch")),
                tile_size=int(raw.get("tile_size", 64)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"model metadata in {source} is unreadable ({exc})") from exc


def sidecar(path: Path) -> Path:
    """Where the metadata of an exported model is written: ``PATH.json``."""
    return path.with_name(path.name + ".json")


class TileClassifier:
    """Logits of (N, C, 64, 64) tiles; subclasses run one runtime."""

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, classes) of normalised float32 tiles (N, C, H, W)."""
        raise NotImplementedError

    def logits(self, raw: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits of raw tiles (any dtype), normalised with the model's own statistics."""
        parts = [
            self.run(normalised(self.meta.stats, raw[i : i + batch_size]))
            for i in range(0, len(raw), batch_size)
        ]
        if not parts:
            return np.zeros((0, len(self.meta.classes)), np.float32)
        return np.concatenate(parts)


def normalised(stats: BandStats, raw: np.ndarray) -> np.ndarray:
    """Raw tiles -> C-contiguous float32 normalised array (what every runtime takes)."""
    return np.ascontiguousarray(stats.normalise(np.asarray(raw)).numpy())


class TorchClassifier(TileClassifier):
    """An eager or TorchScript module."""

    def __init__(self, meta: ModelMeta, module: nn.Module | torch.jit.ScriptModule) -> None:
        super().__init__(meta)
        self.module = module

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.module(t)
        return out.numpy()


class OnnxClassifier(TileClassifier):
    """An onnxruntime CPU session."""

    def __init__(self, meta: ModelMeta, path: Path, threads: int = 1) -> None:
        super().__init__(meta)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input: x})[0]
        return np.asarray(out)


def _meta_beside(path: Path, embedded: str | None) -> ModelMeta:
    if embedded:
        return ModelMeta.from_json(embedded, str(path))
    side = sidecar(path)
    if not side.is_file():
        raise ConfigError(
            f"{path} carries no skydistill metadata and {side} does not exist: export it with "
            "`skydistill export` (which writes both)"
        )
    return ModelMeta.from_json(side.read_text(), str(side))


def load_onnx(path: Path, threads: int = 1) -> OnnxClassifier:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ConfigError(f"{path} is not a readable ONNX model ({exc})") from exc
    props = {p.key: p.value for p in model.metadata_props}
    return OnnxClassifier(_meta_beside(path, props.get(META_KEY)), path, threads)


def load_torchscript(path: Path) -> TorchClassifier:
    extra = {f"{META_KEY}.json": ""}
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, still works
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(path), map_location="cpu", _extra_files=extra
            )
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a TorchScript model ({exc})") from exc
    module.eval()
    return TorchClassifier(_meta_beside(path, extra[f"{META_KEY}.json"] or None), module)


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold ``<name>/code/`` (a student file is a plain torch.save zip)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def load_classifier(path: Path, threads: int = 1) -> TileClassifier:
    """A student file (.pt), a TorchScript file or an ONNX file (``.onnx``), ready to run."""
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist")
    if path.suffix == ".onnx":
        return load_onnx(path, threads)
    if _is_torchscript(path):
        return load_torchscript(path)
    try:
        student = load_student(path)
    except ConfigError:
        try:
            return load_torchscript(path)
        except ConfigError:
            raise ConfigError(
                f"{path} is neither a skydistill student file, a TorchScript file nor (with "
                "the .onnx suffix) an ONNX model"
            ) from None
    return TorchClassifier(ModelMeta.of_student(student), student.build())
