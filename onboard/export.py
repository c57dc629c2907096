"""Export a student file to TorchScript or ONNX (optionally int8), and check the export.

int8 is ONNX only: onnxruntime's static post-training quantisation (per-channel int8 weights,
uint8 activations, QDQ format by default, which onnxruntime fuses into integer kernels on CPU),
calibrated on normalised tiles of the public reference set. Every export is then compared with
the original student on the test split: top-1 agreement and accuracy of both.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.atomic import atomic_write
from common.dataset import BandStats
from common.errors import ConfigError
from common.student_file import StudentFile, StudentMeta
from onboard.artefact import (
    META_KEY,
    TileClassifier,
    TorchClassifier,
    load_classifier,
    meta_json,
    normalised,
    sidecar,
    torchscript_warnings_off,
)

log = logging.getLogger(__name__)

QUANT_FORMATS = ("qdq", "qoperator")
OPSET = 17


def _example(student: StudentFile) -> torch.Tensor:
    shape = (1, len(student.bands), student.tile_size, student.tile_size)
    return torch.zeros(shape).contiguous(memory_format=torch.channels_last)


def _write_sidecar(out: Path, meta: StudentMeta, fmt: str) -> None:
    text = meta_json(meta, fmt).encode()
    atomic_write(sidecar(out), lambda fh: fh.write(text))


def export_torchscript(student: StudentFile, out: Path, int8: bool = False) -> Path:
    """A traced TorchScript module with the metadata as extra file ``skydistill.json``."""
    if int8:
        raise ConfigError(
            "int8 TorchScript export is not supported (torch's eager-mode quantisation would "
            "need quantisation stubs in every zoo model): use `--format onnx --int8`, which "
            "runs in onnxruntime's integer kernels"
        )
    # torch 2.13 deprecates TorchScript (torch.jit) but still runs it; the issue asks for it.
    with torch.no_grad(), torchscript_warnings_off():
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            student.build(), _example(student)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {f"{META_KEY}.json": meta_json(student, "torchscript")}
    with torchscript_warnings_off():
        atomic_write(out, lambda fh: torch.jit.save(traced, fh, _extra_files=extra))
    _write_sidecar(out, student, "torchscript")
    return out


class _Calibration:
    """onnxruntime CalibrationDataReader over normalised reference tiles, in small batches."""

    def __init__(self, stats: BandStats, raw: np.ndarray, input_name: str, batch: int = 16):
        self._batches: Iterator[dict[str, np.ndarray]] = (
            {input_name: normalised(stats, raw[i : i + batch])} for i in range(0, len(raw), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _torch_to_onnx(student: StudentFile, path: Path) -> None:
    with torchscript_warnings_off():  # the legacy exporter, on purpose: no onnxscript needed
        torch.onnx.export(
            student.build(),
            (_example(student),),
            str(path),
            dynamo=False,  # the TorchScript-based exporter
            input_names=["tiles"],
            output_names=["logits"],
            dynamic_axes={"tiles": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )


def _quantise(fp32: Path, out: Path, calibration: _Calibration, quant_format: str) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = fp32.with_name(fp32.stem + "-pre.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(out),
        calibration,  # duck-typed CalibrationDataReader (get_next)
        quant_format=QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def export_onnx(
    student: StudentFile,
    out: Path,
    int8: bool = False,
    calibration: np.ndarray | None = None,
    quant_format: str = "qdq",
) -> Path:
    """An ONNX model (opset 17, dynamic batch) with the metadata in ``metadata_props``.

    ``calibration``: raw reference tiles (N, C, H, W), required with ``int8``.
    """
    import onnx

    if quant_format not in QUANT_FORMATS:
        raise ConfigError(f"quant format {quant_format!r}: choose one of {QUANT_FORMATS}")
    if int8 and (calibration is None or len(calibration) == 0):
        raise ConfigError("int8 export needs calibration tiles (the reference set)")
    fmt = "onnx-int8" if int8 else "onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _torch_to_onnx(student, fp32)
        final = fp32
        if int8 and calibration is not None:
            final = Path(tmp) / "int8.onnx"
            _quantise(fp32, final, _Calibration(student.stats, calibration, "tiles"), quant_format)
        model = onnx.load(str(final))
        prop = model.metadata_props.add()
        prop.key, prop.value = META_KEY, meta_json(student, fmt)
        onnx.save(model, str(Path(tmp) / "final.onnx"))
        os.replace(Path(tmp) / "final.onnx", out)
    _write_sidecar(out, student, fmt)
    return out


@dataclass(frozen=True)
class Verification:
    """An export compared with the original student on labelled tiles."""

    tiles: int
    agreement: float  # fraction of tiles where both give the same top-1 class
    accuracy: float  # the export's accuracy
    accuracy_original: float
    max_abs_logit_diff: float

    def describe(self) -> str:
        return (
            f"top-1 agreement {self.agreement:.4f} with the student, accuracy "
            f"{self.accuracy:.4f} (student {self.accuracy_original:.4f}) on {self.tiles:,} "
            f"test tiles, max |logit difference| {self.max_abs_logit_diff:.3g}"
        )


def verify(
    original: TileClassifier, exported: TileClassifier, raw: np.ndarray, labels: np.ndarray
) -> Verification:
    if len(raw) == 0:
        raise ConfigError("no test tiles to verify the export on")
    a = original.logits(raw)
    b = exported.logits(raw)
    pa, pb = a.argmax(axis=1), b.argmax(axis=1)
    return Verification(
        tiles=len(raw),
        agreement=float((pa == pb).mean()),
        accuracy=float((pb == labels).mean()),
        accuracy_original=float((pa == labels).mean()),
        max_abs_logit_diff=float(np.abs(a - b).max()),
    )


def export_and_verify(
    student: StudentFile,
    fmt: str,
    out: Path,
    *,
    int8: bool,
    calibration: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    quant_format: str = "qdq",
) -> Verification:
    """Export ``student`` to ``out`` in ``fmt`` and check it on the test tiles (logged)."""
    if fmt == "torchscript":
        export_torchscript(student, out, int8=int8)
    elif fmt == "onnx":
        export_onnx(student, out, int8=int8, calibration=calibration, quant_format=quant_format)
    else:
        raise ConfigError(f"export format {fmt!r}: choose torchscript or onnx")
    original = TorchClassifier.of_student(student)
    check = verify(original, load_classifier(out), test_x, test_y)
    kind = f"{fmt}-int8" if int8 else fmt
    log.info(
        "%s export of the %s student (%s): %s", kind, student.role, student.arch, check.describe()
    )
    return check
