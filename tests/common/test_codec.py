from __future__ import annotations

import numpy as np
import pytest

from common import keys
from common.codec import (
    PROBS,
    SCALE,
    TOPK_INDEX,
    Codec,
    decode,
    encode,
    payload_bytes,
    validate_probabilities,
)
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


def test_int8_uses_a_per_row_scale() -> None:
    p = _probs(6)
    payload = encode(p, Codec.INT8)
    assert payload[SCALE].dtype == np.float32 and payload[SCALE].shape == (6,)
    np.testing.assert_allclose(payload[SCALE], p.max(axis=1) / 127, rtol=1e-6)
    assert payload[PROBS].max(axis=1).tolist() == [127] * 6  # each row uses its full range


# --- top-k --------------------------------------------------------------------------------


def test_topk_is_a_codec_and_does_not_clash_with_message_keys() -> None:
    assert Codec.parse("topk") is Codec.TOPK
    assert TOPK_INDEX not in {keys.INDICES, PROBS, SCALE}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_topk_round_trip(k: int) -> None:
    n, c = 50, 10
    p = _probs(n, c, seed=k)
    payload = encode(p, Codec.TOPK, k=k)
    assert set(payload) == {TOPK_INDEX, PROBS}
    assert payload[TOPK_INDEX].dtype == np.uint8 and payload[TOPK_INDEX].shape == (n, k)
    assert payload[PROBS].dtype == np.float16 and payload[PROBS].shape == (n, k)
    assert payload_bytes(payload) == n * k * 1 + n * k * 2
    q = decode(payload, Codec.TOPK, (n, c))
    assert q.dtype == np.float32 and q.shape == (n, c)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(q.argmax(1), p.argmax(1))
    kept = np.argsort(-p, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(payload[TOPK_INDEX], kept)
    np.testing.assert_allclose(
        np.take_along_axis(q, kept, 1), np.take_along_axis(p, kept, 1), atol=1e-3
    )
    mask = np.ones_like(p, dtype=bool)
    np.put_along_axis(mask, kept, False, axis=1)
    if k < c:  # the mass not sent is spread evenly over the other classes
        rest = (1 - np.take_along_axis(p, kept, 1).sum(1)) / (c - k)
        np.testing.assert_allclose(
            q[mask].reshape(n, c - k), np.repeat(rest[:, None], c - k, 1), atol=2e-3
        )
    else:
        np.testing.assert_allclose(q, p, atol=1e-3)


def test_topk_clips_k_to_the_number_of_classes() -> None:
    p = _probs(5, 4)
    payload = encode(p, Codec.TOPK, k=25)
    assert payload[TOPK_INDEX].shape == (5, 4) and payload_bytes(payload) == 5 * 4 * 3
    np.testing.assert_allclose(decode(payload, Codec.TOPK, p.shape), p, atol=1e-3)


def test_topk_uses_uint16_indices_above_256_classes() -> None:
    p = _probs(4, 300)
    payload = encode(p, Codec.TOPK, k=5)
    assert payload[TOPK_INDEX].dtype == np.uint16
    assert payload_bytes(payload) == 4 * 5 * 2 + 4 * 5 * 2
    np.testing.assert_array_equal(decode(payload, Codec.TOPK, p.shape).argmax(1), p.argmax(1))


def test_topk_ties_keep_the_lower_class_and_one_hot_is_exact() -> None:
    p = np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0]], np.float32)
    payload = encode(p, Codec.TOPK, k=2)
    np.testing.assert_array_equal(payload[TOPK_INDEX], [[0, 1], [2, 0]])
    np.testing.assert_array_equal(decode(payload, Codec.TOPK, p.shape), p)


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_topk_encode_rejects_bad_k(k: object) -> None:
    with pytest.raises(CodecError, match="k >= 1"):
        encode(_probs(3), Codec.TOPK, k=k)  # type: ignore[arg-type]


def _topk(
    idx: list[list[int]], values: list[list[float]], idx_dtype: type = np.uint8
) -> dict[str, np.ndarray]:
    return {TOPK_INDEX: np.array(idx, idx_dtype), PROBS: np.array(values, np.float16)}


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (_topk([[1, 1]], [[0.5, 0.3]]), "repeats a class index"),
        (_topk([[0, 4]], [[0.5, 0.3]]), "out of range"),
        (_topk([[0, 1]], [[np.nan, 0.3]]), "NaN or Inf"),
        (_topk([[0, 1]], [[np.inf, 0.3]]), "NaN or Inf"),
        (_topk([[0, 1]], [[-0.5, 0.3]]), "outside"),
        (_topk([[0, 1]], [[0.7, 0.6]]), "summing to"),
        (_topk([[0, 1]], [[0.5, 0.3]], np.int64), "uint8"),
        (_topk([[0, 1]], [[0.5, 0.3]], np.uint16), "uint8"),
        (
            {TOPK_INDEX: np.array([[0, 1]], np.uint8), PROBS: np.array([[0.5, 0.3]], np.float32)},
            "float16",
        ),
        (_topk([[0, 1, 2, 3, 3]], [[0.2] * 5]), r"1 <= k <= C=4"),  # k > C
        (_topk([[0, 1], [2, 3]], [[0.5, 0.3], [0.5, 0.3]]), r"n=1"),  # wrong n
        (_topk([[0, 1]], [[0.5, 0.3, 0.1]]), "shape"),  # values do not match indices
        (_topk([[0, 1, 2, 3]], [[0.2, 0.2, 0.2, 0.2]]), "sums to"),  # k == C loses mass
        (
            {"indices": np.array([[0, 1]], np.uint8), PROBS: np.array([[0.5, 0.3]], np.float16)},
            "arrays",
        ),
        ({PROBS: np.array([[0.5, 0.3, 0.1, 0.1]], np.float16)}, "arrays"),
    ],
)
def test_topk_decode_rejects(payload: dict[str, np.ndarray], match: str) -> None:
    with pytest.raises(CodecError, match=match):
        decode(payload, Codec.TOPK, (1, 4))


def test_topk_decode_accepts_float16_rounding_above_one() -> None:
    q = decode(_topk([[2, 0]], [[0.6, 0.402]]), Codec.TOPK, (1, 4))
    np.testing.assert_allclose(q.sum(), 1.0, atol=1e-6)
    assert q[0, 1] == 0 and q[0, 3] == 0
