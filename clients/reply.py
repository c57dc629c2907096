"""The client-side guard: the only reply a client can build holds soft predictions.

Whatever the code above it asks, nothing but an (n requested, C) probability array for the
requested reference indices, plus scalar metrics and the role, can leave the node.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from common import keys
from common.codec import Codec, encode, validate_probabilities
from common.errors import CodecError


def build_reply(
    probs: np.ndarray,
    requested: np.ndarray,
    num_classes: int,
    codec: Codec,
    role: str,
    metrics: dict[str, int | float | list[int]],
    topk: int = 3,
) -> RecordDict:
    """Encode predictions after checking they cover exactly the requested reference indices."""
    shape = (len(requested), num_classes)
    if np.asarray(probs).shape != shape:
        raise CodecError(
            f"refusing to send an array of shape {np.asarray(probs).shape}: only soft predictions "
            f"of shape {shape} for the requested reference indices may leave a client"
        )
    payload = encode(validate_probabilities(probs, shape), codec, k=topk)
    record = ArrayRecord({name: Array(a) for name, a in payload.items()})
    out: dict[str, int | float | list[int] | list[float]] = dict(metrics)
    out[keys.PAYLOAD_BYTES] = record.count_bytes()
    return RecordDict(
        {
            keys.PREDICTIONS: record,
            keys.METRICS: MetricRecord(out),
            keys.INFO: ConfigRecord({keys.ROLE: role}),
        }
    )
