"""Soft-label codec: class probabilities on the wire as fp32, fp16 or int8 with a per-row scale.

Every payload is a dict of named numpy arrays (it maps 1:1 onto a Flower ``ArrayRecord``).
Decoding validates dtype, shape, finiteness and range before anything touches the knowledge.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import numpy as np

from common.errors import CodecError

PROBS = "probs"
SCALE = "scale"

SUM_TOLERANCE = 1e-2  # int8 rounding moves a row sum by at most C * 0.5/127 before renormalising


class Codec(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"

    @classmethod
    def parse(cls, value: str) -> Codec:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(c.value for c in cls)
            raise CodecError(f"unknown codec {value!r}: choose one of {choices}") from None


def validate_probabilities(
    probs: np.ndarray, shape: tuple[int, int] | None = None, atol: float = SUM_TOLERANCE
) -> np.ndarray:
    """Check that ``probs`` is a finite (n, C) array of rows in [0, 1] summing to one."""
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise CodecError(f"soft labels must be 2-D (samples, classes), got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise CodecError(f"soft labels have shape {arr.shape}, expected {tuple(shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise CodecError(f"soft labels must be floating point, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise CodecError("soft labels contain NaN or Inf")
    if arr.size and (arr.min() < -1e-6 or arr.max() > 1.0 + 1e-6):
        raise CodecError(f"soft labels outside [0, 1]: min {arr.min():.4g}, max {arr.max():.4g}")
    sums = arr.sum(axis=1, dtype=np.float64)
    if arr.size and np.max(np.abs(sums - 1.0)) > atol:
        worst = int(np.argmax(np.abs(sums - 1.0)))
        raise CodecError(f"row {worst} of the soft labels sums to {sums[worst]:.4f}, not 1")
    return arr.astype(np.float32, copy=False)


def encode(probs: np.ndarray, codec: Codec) -> dict[str, np.ndarray]:
    """Encode validated probabilities for the wire."""
    p = validate_probabilities(probs)
    if codec is Codec.FP32:
        return {PROBS: np.ascontiguousarray(p, dtype=np.float32)}
    if codec is Codec.FP16:
        return {PROBS: p.astype(np.float16)}
    row_max = p.max(axis=1) if p.size else np.zeros(len(p), dtype=np.float32)
    scale = np.where(row_max > 0, row_max / 127.0, 1.0).astype(np.float32)
    q = np.rint(p / scale[:, None]).clip(0, 127).astype(np.int8)
    return {PROBS: q, SCALE: scale}


def decode(payload: Mapping[str, np.ndarray], codec: Codec, shape: tuple[int, int]) -> np.ndarray:
    """Decode and validate a payload into float32 probabilities of exactly ``shape``."""
    expected = {PROBS, SCALE} if codec is Codec.INT8 else {PROBS}
    if set(payload) != expected:
        raise CodecError(
            f"{codec} payload must hold arrays {sorted(expected)}, got {sorted(payload)}"
        )
    raw = np.asarray(payload[PROBS])
    if raw.shape != tuple(shape):
        raise CodecError(f"payload has shape {raw.shape}, expected {tuple(shape)}")
    want = {Codec.FP32: np.float32, Codec.FP16: np.float16, Codec.INT8: np.int8}[codec]
    if raw.dtype != want:
        raise CodecError(f"{codec} payload must be {np.dtype(want)}, got {raw.dtype}")
    if codec is not Codec.INT8:
        p = validate_probabilities(raw.astype(np.float32), shape)
        return p / p.sum(axis=1, keepdims=True) if p.size else p
    scale = np.asarray(payload[SCALE])
    if scale.dtype != np.float32 or scale.shape != (shape[0],):
        raise CodecError(
            f"int8 scale must be float32 of shape ({shape[0]},), got {scale.dtype} {scale.shape}"
        )
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0) or np.any(scale > 1.0 / 127 + 1e-6):
        raise CodecError("int8 scale must be finite and in (0, 1/127]")
    if raw.size and raw.min() < 0:
        raise CodecError("int8 soft labels must be non-negative")
    p = raw.astype(np.float32) * scale[:, None]
    sums = p.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise CodecError("int8 payload has an all-zero row")
    return validate_probabilities(p / sums, shape)


def payload_bytes(payload: Mapping[str, np.ndarray]) -> int:
    """Bytes of array data in a payload (what the codec puts on the wire)."""
    return int(sum(np.asarray(a).nbytes for a in payload.values()))
