from __future__ import annotations

import numpy as np
import pytest

from common.codec import PROBS, SCALE, Codec, decode, encode, payload_bytes, validate_probabilities
from common.errors import CodecError


def _probs(n: int = 50, c: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, c))
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("codec", "atol", "nbytes"),
    [
        (Codec.FP32, 1e-6, 50 * 10 * 4),
        (Codec.FP16, 1e-3, 50 * 10 * 2),
        (Codec.INT8, 2e-2, 50 * 10 + 50 * 4),
    ],
)
def test_round_trip(codec: Codec, atol: float, nbytes: int) -> None:
    p = _probs()
    payload = encode(p, codec)
    assert payload_bytes(payload) == nbytes
    q = decode(payload, codec, p.shape)
    assert q.dtype == np.float32 and q.shape == p.shape
    np.testing.assert_allclose(q, p, atol=atol)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-5)
    assert (q.argmax(1) == p.argmax(1)).mean() > 0.97


def test_int8_keeps_one_hot_exact() -> None:
    p = np.eye(10, dtype=np.float32)
    np.testing.assert_array_equal(decode(encode(p, Codec.INT8), Codec.INT8, (10, 10)), p)


@pytest.mark.parametrize(
    "bad",
    [
        np.full((4, 10), np.nan, np.float32),
        np.full((4, 10), np.inf, np.float32),
        np.full((4, 10), 0.5, np.float32),  # rows sum to 5
        -np.full((4, 10), 0.1, np.float32),
        np.ones((10,), np.float32),  # 1-D
        np.ones((4, 10), np.int64),  # not floating
    ],
)
def test_encode_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(CodecError):
        encode(bad, Codec.FP16)


def test_decode_rejects_wrong_shape_dtype_and_keys() -> None:
    p = _probs(8)
    with pytest.raises(CodecError, match="shape"):
        decode(encode(p, Codec.FP16), Codec.FP16, (9, 10))
    with pytest.raises(CodecError, match="float16"):
        decode({PROBS: p.astype(np.float64)}, Codec.FP16, p.shape)
    with pytest.raises(CodecError, match="arrays"):
        decode({PROBS: p, "pixels": p}, Codec.FP32, p.shape)
    payload = encode(p, Codec.INT8)
    with pytest.raises(CodecError, match="scale"):
        decode({PROBS: payload[PROBS], SCALE: np.full(8, np.nan, np.float32)}, Codec.INT8, p.shape)
    with pytest.raises(CodecError, match="non-negative"):
        decode({PROBS: -payload[PROBS], SCALE: payload[SCALE]}, Codec.INT8, p.shape)
    with pytest.raises(CodecError, match="all-zero"):
        decode({PROBS: np.zeros((8, 10), np.int8), SCALE: payload[SCALE]}, Codec.INT8, p.shape)


def test_validate_tolerates_rounding_but_not_mass_loss() -> None:
    p = _probs(4)
    validate_probabilities(p * 1.001)
    with pytest.raises(CodecError, match="sums"):
        validate_probabilities(p * 0.9)


def test_unknown_codec_is_named() -> None:
    with pytest.raises(CodecError, match="fp16"):
        Codec.parse("bf16")
