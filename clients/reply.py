"""The client-side guard: the only reply a client can build holds soft predictions.

Whatever the code above it asks, nothing but an (n requested, C) probability array for the
requested reference indices, plus scalar metrics and the role, can leave the node; and, when
the server asks for them, class statistics of exactly the shape the shared backbone gives
(per-class counts, feature sums and the scatter's upper triangle: no tile, no label list).
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from common import keys
from common.class_stats import ClassStats
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
    statistics: ClassStats | None = None,
    client_name: str = "",
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
    content: dict[str, ArrayRecord | MetricRecord] = {keys.PREDICTIONS: record}
    info = ConfigRecord({keys.ROLE: role})
    if statistics is not None:
        if statistics.num_classes != num_classes:
            raise CodecError(
                f"refusing to send statistics of {statistics.num_classes} classes for {num_classes}"
            )
        arrays = statistics.to_arrays()
        content[keys.CLASS_STATISTICS] = ArrayRecord({k: Array(a) for k, a in arrays.items()})
    if client_name:  # its stable name: the server keys the client's trust and statistics by it
        info[keys.CLIENT_NAME] = client_name
    out: dict[str, int | float | list[int] | list[float]] = dict(metrics)
    out[keys.PAYLOAD_BYTES] = sum(
        r.count_bytes() for r in content.values() if isinstance(r, ArrayRecord)
    )
    content[keys.METRICS] = MetricRecord(out)
    return RecordDict({**content, keys.INFO: info})
