"""Property-based: malformed client replies and codec payloads never crash the validation path.

Over 10,000 generated replies: every malformed one is rejected with a ReplyError whose reason is
one of the counted rejection reasons; every well-formed one passes with the requested shape.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from common import keys
from common.codec import PROBS, SCALE, TOPK_INDEX, Codec, encode
from common.errors import ReplyError
from server.replies import REJECTION_REASONS, parse_reply

N, C = 6, 4
SHAPE = (N, C)
FAST = settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _instruction() -> Message:
    return Message(
        RecordDict({"x": ConfigRecord({"a": 1})}), dst_node_id=7, message_type=MessageType.TRAIN
    )


def _reply(records: dict[str, object]) -> Message:
    return Message(RecordDict(records), reply_to=_instruction())  # type: ignore[arg-type]


def _valid_probs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(C), N).astype(np.float32)


def _records(
    payload: dict[str, np.ndarray], role: object, examples: object, counts: object = None
) -> dict[str, object]:
    metrics: dict[str, object] = {keys.NUM_EXAMPLES: examples}
    if counts is not None:
        metrics[keys.CLASS_COUNTS] = counts
    return {
        keys.PREDICTIONS: ArrayRecord({k: Array(v) for k, v in payload.items()}),
        keys.METRICS: MetricRecord(metrics),  # type: ignore[arg-type]
        keys.INFO: ConfigRecord({keys.ROLE: role}),  # type: ignore[dict-item]
    }


def _check_rejected(msg: Message, codec: Codec) -> None:
    with pytest.raises(ReplyError) as info:
        parse_reply(msg, SHAPE, codec)
    assert info.value.reason in REJECTION_REASONS


numeric_dtypes = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int16, np.int64, np.bool_]
)
any_array = hnp.arrays(
    dtype=numeric_dtypes,
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7),
    elements={"allow_nan": True, "allow_infinity": True},
)


@FAST
@given(
    codec=st.sampled_from(list(Codec)),
    arrays=st.dictionaries(
        st.sampled_from([PROBS, SCALE, TOPK_INDEX, "pixels"]), any_array, max_size=3
    ),
)
def test_arbitrary_payload_arrays_are_rejected_or_valid(
    codec: Codec, arrays: dict[str, np.ndarray]
) -> None:
    msg = _reply(_records(arrays, "drone", 5))
    try:
        out = parse_reply(msg, SHAPE, codec)
    except ReplyError as exc:
        assert exc.reason in REJECTION_REASONS
    else:  # a random payload that happens to be valid must really be valid
        assert out.probs.shape == SHAPE and np.allclose(out.probs.sum(1), 1, atol=1e-3)


@FAST
@given(
    codec=st.sampled_from(list(Codec)),
    seed=st.integers(0, 2**16),
    corruption=st.sampled_from(
        ["nan", "inf", "negative", "scale", "rows", "cols", "dtype", "mass"]
    ),
)
def test_corrupted_valid_payloads_are_rejected(codec: Codec, seed: int, corruption: str) -> None:
    payload = {k: v.copy() for k, v in encode(_valid_probs(seed), codec).items()}
    p = payload[PROBS]
    if corruption == "nan" and p.dtype.kind == "f":
        p[0, 0] = np.nan
    elif corruption == "inf" and p.dtype.kind == "f":
        p[-1, -1] = np.inf
    elif corruption == "negative":
        p[0, 0] = -1
    elif corruption == "scale" and SCALE in payload:
        payload[SCALE][0] = np.nan
    elif corruption == "rows":
        payload = {k: v[:-1] for k, v in payload.items()}
    elif corruption == "cols":
        payload[PROBS] = np.concatenate([p, p[:, :1]], axis=1)
    elif corruption == "dtype":
        payload[PROBS] = p.astype(np.float64)
    elif corruption == "mass" and p.dtype.kind == "f" and codec is not Codec.TOPK:
        # (top-k spreads missing mass by design, so halving its values stays valid)
        p[:] = p * 0.5
    else:
        payload["pixels"] = np.zeros((N, 3, 8, 8), np.float32)  # corruption not applicable
    _check_rejected(_reply(_records(payload, "satellite", 10)), codec)


@FAST
@given(
    role=st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.binary(max_size=4)),
    examples=st.one_of(st.integers(-10, 10), st.floats(allow_nan=True)),  # no bools: Flower refuses
    drop=st.sampled_from([None, keys.PREDICTIONS, keys.METRICS, keys.INFO]),
    extra=st.booleans(),
    counts=st.one_of(
        st.none(),
        st.lists(st.integers(-3, 10**6), min_size=0, max_size=2 * C),
        st.lists(st.floats(allow_nan=True), min_size=C, max_size=C),
    ),
)
def test_bad_metadata_and_records_are_rejected(
    role: object, examples: object, drop: str | None, extra: bool, counts: object
) -> None:
    records = _records(encode(_valid_probs(0), Codec.FP16), role, examples, counts)
    if drop is not None:
        del records[drop]
    if extra:
        records["images"] = ArrayRecord({"x": Array(np.zeros((2, 3, 64, 64), np.float32))})
    valid = (
        drop is None
        and not extra
        and role in ("satellite", "drone", "ground-station")
        and isinstance(examples, int)
        and not isinstance(examples, bool)
        and examples >= 0
        and (
            counts is None
            or (
                isinstance(counts, list)
                and len(counts) == C
                and all(isinstance(c, int) and c >= 0 for c in counts)
            )
        )
    )
    msg = _reply(records)
    if valid:
        assert parse_reply(msg, SHAPE, Codec.FP16).probs.shape == SHAPE
    else:
        _check_rejected(msg, Codec.FP16)


@FAST
@given(
    codec=st.sampled_from(list(Codec)), seed=st.integers(0, 2**16), examples=st.integers(0, 10**6)
)
def test_valid_replies_pass(codec: Codec, seed: int, examples: int) -> None:
    probs = _valid_probs(seed)
    out = parse_reply(
        _reply(_records(encode(probs, codec), "ground-station", examples)), SHAPE, codec
    )
    assert out.probs.shape == SHAPE and out.num_examples == examples
    assert (out.probs.argmax(1) == probs.argmax(1)).mean() >= 0.5
