"""Soft-label codec: class probabilities on the wire as fp32, fp16, int8 or top-k.

* ``fp32`` / ``fp16``: the (n, C) array as is (``PROBS``).
* ``int8``: ``PROBS`` quantised to 0..127 with a float32 per-row scale ``SCALE`` (row max / 127).
* ``topk``: per row the k largest probabilities (``PROBS``, float16, (n, k)) and their classes
  (``TOPK_INDEX``, uint8 or uint16, (n, k)); decoding spreads the missing mass evenly over the
  other C - k classes.

Every payload is a dict of named numpy arrays (it maps 1:1 onto a Flower ``ArrayRecord``).
Decoding validates dtype, shape, finiteness and range before anything touches the knowledge.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np

from common.errors import CodecError

PROBS = "probs"  # fp32 / fp16 / int8 probabilities; the kept float16 values for top-k
SCALE = "scale"  # int8: float32 per-row scale, shape (n,)
TOPK_INDEX = "topk-index"  # top-k: kept class indices, uint8 (C <= 256) or uint16, shape (n, k)
MAX_TOPK_CLASSES = 65536

SUM_TOLERANCE = 1e-2  # int8 rounding moves a row sum by at most C * 0.5/127 before renormalising


class Codec(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    TOPK = "topk"

    @classmethod
    def parse(cls, value: str) -> Codec:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(c.value for c in cls)
            raise CodecError(f"unknown codec {value!r}: choose one of {choices}") from None


_EXPECTED_KEYS: dict[Codec, set[str]] = {
    Codec.FP32: {PROBS},
    Codec.FP16: {PROBS},
    Codec.INT8: {PROBS, SCALE},
    Codec.TOPK: {PROBS, TOPK_INDEX},
}


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


def encode(probs: np.ndarray, codec: Codec, *, k: int = 3) -> dict[str, np.ndarray]:
    """Encode validated probabilities for the wire.

    ``k`` is only used by :attr:`Codec.TOPK` (the number of classes kept per row, clipped to C).
    """
    p = validate_probabilities(probs)
    if codec is Codec.FP32:
        return {PROBS: np.ascontiguousarray(p, dtype=np.float32)}
    if codec is Codec.FP16:
        return {PROBS: p.astype(np.float16)}
    if codec is Codec.TOPK:
        return _encode_topk(p, k)
    row_max = p.max(axis=1) if p.size else np.zeros(len(p), dtype=np.float32)
    scale = np.where(row_max > 0, row_max / 127.0, 1.0).astype(np.float32)
    q = np.rint(p / scale[:, None]).clip(0, 127).astype(np.int8)
    return {PROBS: q, SCALE: scale}


def _index_dtype(num_classes: int) -> type[np.unsignedinteger[Any]]:
    return np.uint8 if num_classes <= 256 else np.uint16


def _encode_topk(p: np.ndarray, k: int) -> dict[str, np.ndarray]:
    num_classes = p.shape[1]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise CodecError(f"top-k needs an integer k >= 1, got {k!r}")
    if not 1 <= num_classes <= MAX_TOPK_CLASSES:
        raise CodecError(f"top-k supports 1..{MAX_TOPK_CLASSES} classes, got {num_classes}")
    k = min(int(k), num_classes)
    # stable sort on -p: the largest first, ties broken towards the lower class index
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(p, idx, axis=1).clip(0.0, 1.0)
    return {TOPK_INDEX: idx.astype(_index_dtype(num_classes)), PROBS: values.astype(np.float16)}


def decode(payload: Mapping[str, np.ndarray], codec: Codec, shape: tuple[int, int]) -> np.ndarray:
    """Decode and validate a payload into float32 probabilities of exactly ``shape``."""
    expected = _EXPECTED_KEYS[codec]
    if set(payload) != expected:
        raise CodecError(
            f"{codec} payload must hold arrays {sorted(expected)}, got {sorted(payload)}"
        )
    if codec is Codec.TOPK:
        return _decode_topk(payload, shape)
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


def _decode_topk(payload: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Rebuild (n, C) rows: the k sent values, the rest of the mass spread over the others."""
    n, num_classes = shape
    idx, values = np.asarray(payload[TOPK_INDEX]), np.asarray(payload[PROBS])
    if idx.ndim != 2 or idx.shape[0] != n or not 1 <= idx.shape[1] <= num_classes:
        raise CodecError(
            f"top-k {TOPK_INDEX!r} must have shape (n={n}, k) with 1 <= k <= C={num_classes}, "
            f"got {idx.shape}"
        )
    want_idx = np.dtype(_index_dtype(num_classes))
    if idx.dtype != want_idx:
        raise CodecError(
            f"top-k {TOPK_INDEX!r} must be {want_idx} for C={num_classes}, got {idx.dtype}"
        )
    if values.shape != idx.shape or values.dtype != np.float16:
        raise CodecError(
            f"top-k {PROBS!r} must be float16 of shape {idx.shape} (like {TOPK_INDEX!r}), "
            f"got {values.dtype} {values.shape}"
        )
    k = idx.shape[1]
    if idx.size and int(idx.max()) >= num_classes:
        raise CodecError(f"top-k class index {int(idx.max())} out of range [0, {num_classes})")
    ordered = np.sort(idx, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        row = int(np.argmax(np.any(ordered[:, 1:] == ordered[:, :-1], axis=1)))
        raise CodecError(f"top-k row {row} repeats a class index: {idx[row].tolist()}")
    v = values.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise CodecError("top-k values contain NaN or Inf")
    if v.size and (v.min() < 0 or v.max() > 1):
        raise CodecError(f"top-k values outside [0, 1]: min {v.min():.4g}, max {v.max():.4g}")
    sent = v.sum(axis=1)
    if np.any(sent > 1 + SUM_TOLERANCE):
        row = int(np.argmax(sent))
        raise CodecError(f"top-k row {row} sends values summing to {sent[row]:.4f} > 1")
    out = np.zeros((n, num_classes), dtype=np.float64)
    if k < num_classes:  # spread the mass not sent evenly over the C - k other classes
        out += (np.clip(1.0 - sent, 0.0, None) / (num_classes - k))[:, None]
    np.put_along_axis(out, idx.astype(np.intp), v, axis=1)
    p = validate_probabilities(out, shape)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32) if p.size else p


def payload_bytes(payload: Mapping[str, np.ndarray]) -> int:
    """Bytes of array data in a payload (what the codec puts on the wire)."""
    return int(sum(np.asarray(a).nbytes for a in payload.values()))
