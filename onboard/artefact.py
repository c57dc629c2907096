"""A deployable model of any format (student file, TorchScript, ONNX) behind one interface.

Every exported artefact carries the metadata of the student it came from (architecture, role,
bands, classes, normalisation statistics: :class:`common.student_file.StudentMeta`) and its
format. It is embedded (TorchScript extra file ``skydistill.json``, ONNX ``metadata_props``)
and also written beside it as ``PATH.json``.
:func:`load_classifier` takes any of the three and returns a :class:`TileClassifier` that
normalises raw tiles with the statistics the model was trained with.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.dataset import BandStats
from common.errors import ConfigError
from common.student_file import StudentFile, StudentMeta, is_torchscript, load_student

META_KEY = "skydistill"
FORMATS = ("torch", "torchscript", "onnx", "onnx-int8")


def meta_json(meta: StudentMeta, fmt: str) -> str:
    """The metadata an artefact of format ``fmt`` carries (embedded and in its sidecar)."""
    return json.dumps(
        {
            "arch": meta.arch,
            "role": meta.role,
            "bands": list(meta.bands),
            "classes": list(meta.classes),
            "mean": list(meta.stats.mean),
            "std": list(meta.stats.std),
            "format": fmt,
            "tile_size": meta.tile_size,
        },
        indent=2,
    )


def read_meta_json(text: str, source: str) -> tuple[StudentMeta, str]:
    """(metadata, format) of :func:`meta_json`'s text; ConfigError if it is unreadable."""
    try:
        raw = json.loads(text)
        meta = StudentMeta.parse(
            arch=raw["arch"],
            role=raw["role"],
            bands=raw["bands"],
            classes=raw["classes"],
            mean=raw["mean"],
            std=raw["std"],
            tile_size=raw.get("tile_size", 64),
        )
        return meta, str(raw.get("format", "torch"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model metadata in {source} is unreadable ({exc})") from exc


def sidecar(path: Path) -> Path:
    """Where the metadata of an exported model is written: ``PATH.json``."""
    return path.with_name(path.name + ".json")


@contextmanager
def torchscript_warnings_off() -> Iterator[None]:
    """TorchScript (and the legacy ONNX exporter built on it) is deprecated in torch 2.13 but
    still works: silence its DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class TileClassifier:
    """Logits of (N, C, 64, 64) tiles; subclasses run one runtime."""

    def __init__(self, meta: StudentMeta, fmt: str) -> None:
        self.meta = meta
        self.format = fmt  # one of FORMATS

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

    def __init__(
        self, meta: StudentMeta, module: nn.Module | torch.jit.ScriptModule, fmt: str = "torch"
    ) -> None:
        super().__init__(meta, fmt)
        self.module = module

    @classmethod
    def of_student(cls, student: StudentFile) -> TorchClassifier:
        """The student file's own model (eager torch)."""
        return cls(student.meta, student.build())

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.module(t)
        return out.numpy()


class OnnxClassifier(TileClassifier):
    """An onnxruntime CPU session."""

    def __init__(self, meta: StudentMeta, fmt: str, path: Path, threads: int = 1) -> None:
        super().__init__(meta, fmt)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input: x})[0]
        return np.asarray(out)


def _meta_beside(path: Path, embedded: str | None) -> tuple[StudentMeta, str]:
    if embedded:
        return read_meta_json(embedded, str(path))
    side = sidecar(path)
    if not side.is_file():
        raise ConfigError(
            f"{path} carries no skydistill metadata and {side} does not exist: export it with "
            "`skydistill export` (which writes both)"
        )
    return read_meta_json(side.read_text(), str(side))


def load_onnx(path: Path, threads: int = 1) -> OnnxClassifier:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ConfigError(f"{path} is not a readable ONNX model ({exc})") from exc
    props = {p.key: p.value for p in model.metadata_props}
    return OnnxClassifier(*_meta_beside(path, props.get(META_KEY)), path, threads)


def load_torchscript(path: Path) -> TorchClassifier:
    extra = {f"{META_KEY}.json": ""}
    try:
        with torchscript_warnings_off():
            module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(path), map_location="cpu", _extra_files=extra
            )
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a TorchScript model ({exc})") from exc
    module.eval()
    meta, fmt = _meta_beside(path, extra[f"{META_KEY}.json"] or None)
    return TorchClassifier(meta, module, fmt)


def load_classifier(path: Path, threads: int = 1) -> TileClassifier:
    """A student file (.pt), a TorchScript file or an ONNX file (``.onnx``), ready to run."""
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist")
    if path.suffix == ".onnx":
        return load_onnx(path, threads)
    if is_torchscript(path):
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
    return TorchClassifier.of_student(student)
