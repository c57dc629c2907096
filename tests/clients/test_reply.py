from __future__ import annotations

import numpy as np
import pytest

from clients.reply import build_reply
from common import keys
from common.codec import Codec
from common.errors import CodecError


def _probs(n: int, c: int = 10) -> np.ndarray:
    return np.full((n, c), 1.0 / c, np.float32)


def test_reply_holds_only_soft_predictions_metrics_and_role() -> None:
    reply = build_reply(
        _probs(5), np.arange(5), 10, Codec.INT8, "satellite", {keys.NUM_EXAMPLES: 7}
    )
    assert sorted(reply.keys()) == [keys.INFO, keys.METRICS, keys.PREDICTIONS]
    arrays = reply[keys.PREDICTIONS]
    assert {k: tuple(a.shape) for k, a in arrays.items()} == {"probs": (5, 10), "scale": (5,)}
    metrics = reply[keys.METRICS]
    assert metrics[keys.NUM_EXAMPLES] == 7
    assert metrics[keys.PAYLOAD_BYTES] == arrays.count_bytes()


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((5, 3, 64, 64), np.float32),  # an image batch
        _probs(6),  # more rows than requested
        _probs(5, 11),  # wrong class count
    ],
)
def test_guard_refuses_anything_but_requested_soft_predictions(array: np.ndarray) -> None:
    with pytest.raises(CodecError, match="refusing to send"):
        build_reply(array, np.arange(5), 10, Codec.FP16, "drone", {})


def test_guard_refuses_non_probabilities() -> None:
    with pytest.raises(CodecError):
        build_reply(np.full((5, 10), 3.0, np.float32), np.arange(5), 10, Codec.FP16, "drone", {})
