"""One malformed reply per rejection reason: each is refused with that reason, and a round of
them is counted by reason beside the valid replies (the wire-level version of these cases is
tests/deploy/test_resilience.py, through a real SuperLink)."""

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

from common import keys
from common.codec import PROBS, SCALE, Codec, encode
from common.errors import ReplyError
from server.history import RoundRecord
from server.replies import (
    CAP_SLACK_BYTES,
    REJECTION_REASONS,
    collect_replies,
    parse_reply,
    payload_cap,
)
from tests.deploy import wire_fuzz_app as fuzz

N, C = 8, 10
SHAPE = (N, C)


def _reply(records: dict[str, object], node: int = 7) -> Message:
    ask = Message(
        RecordDict({"x": ConfigRecord({"a": 1})}), dst_node_id=node, message_type=MessageType.TRAIN
    )
    return Message(RecordDict(records), reply_to=ask)  # type: ignore[arg-type]


def _payload() -> dict[str, np.ndarray]:
    probs = np.random.default_rng(0).dirichlet(np.ones(C), N).astype(np.float32)
    return {k: v.copy() for k, v in encode(probs, Codec.INT8).items()}


def _records(
    payload: dict[str, np.ndarray] | None = None, **metrics: float | int
) -> dict[str, object]:
    payload = _payload() if payload is None else payload
    return {
        keys.PREDICTIONS: ArrayRecord({k: Array(v) for k, v in payload.items()}),
        keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 20, **metrics}),
        keys.INFO: ConfigRecord({keys.ROLE: "drone"}),
    }


def _with(name: str, value: np.ndarray) -> dict[str, object]:
    return _records({**_payload(), name: value})


def _corrupt() -> dict[str, object]:
    records = _records()
    bad = Array(dtype="float32", shape=(N, C), stype="numpy.ndarray", data=b"\x93NUMPY garbage")
    records[keys.PREDICTIONS] = ArrayRecord({PROBS: bad, SCALE: Array(_payload()[SCALE])})
    return records


def _without(name: str) -> dict[str, object]:
    records = _records()
    del records[name]
    return records


def _nan_scale() -> dict[str, object]:
    payload = _payload()
    payload[SCALE][2] = np.nan
    return _records(payload)


CASES = {
    "missing record": (_without(keys.METRICS), "keys"),
    "extra record": ({**_records(), "weights": ArrayRecord({"w": Array(np.zeros(3))})}, "keys"),
    "oversized": (_with(PROBS, np.zeros((N, 100_000), np.int8)), "oversized"),
    "corrupt bytes": (_corrupt(), "payload"),
    "more rows": (_records({k: np.concatenate([v, v[:2]]) for k, v in _payload().items()}),
                  "indices"),
    "named indices": (_with(keys.INDICES, np.arange(N, dtype=np.uint16) + 500), "indices"),
    "columns": (_records({**_payload(), PROBS: np.ones((N, C + 1), np.int8)}), "codec"),
    "dtype": (_records({**_payload(), PROBS: _payload()[PROBS].astype(np.float64)}), "codec"),
    "nan": (_nan_scale(), "codec"),
    "accuracy 7": (_records(**{keys.LOCAL_ACCURACY: 7.0}), "metrics"),
    "infinite loss": (_records(**{keys.TRAIN_LOSS: float("inf")}), "metrics"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_each_malformed_reply_is_refused_with_its_reason(case: str) -> None:
    records, reason = CASES[case]
    with pytest.raises(ReplyError) as info:
        parse_reply(_reply(records), SHAPE, Codec.INT8)
    assert info.value.reason == reason, info.value
    assert reason in REJECTION_REASONS


@pytest.mark.parametrize("case", [c for c, r in {**fuzz.REASON, **fuzz.EXTRA}.items() if r])
def test_the_wire_fuzz_replies_are_refused_with_the_reasons_the_wire_test_expects(
    case: str,
) -> None:
    ask = Message(RecordDict(), dst_node_id=3, message_type=MessageType.TRAIN)
    reply = Message(fuzz.malformed(case, N, C, "drone"), reply_to=ask)
    with pytest.raises(ReplyError) as info:
        parse_reply(reply, SHAPE, Codec.INT8)
    assert info.value.reason == {**fuzz.REASON, **fuzz.EXTRA}[case], info.value


def test_the_cap_is_above_every_honest_codec_and_refuses_before_deserialising() -> None:
    probs = np.random.default_rng(1).dirichlet(np.ones(C), N).astype(np.float32)
    for codec in Codec:
        payload = encode(probs, codec)
        assert parse_reply(_reply(_records(payload)), SHAPE, codec).probs.shape == SHAPE
    assert payload_cap(SHAPE) == 2 * 4 * (N * C + N) + CAP_SLACK_BYTES
    assert payload_cap(SHAPE, statistics_dim=16) > payload_cap(SHAPE)
    # Far above the cap, and not even a valid array: the cap answers first.
    huge = Array(dtype="int8", shape=(N, C), stype="numpy.ndarray", data=b"x" * 10**6)
    records = _records()
    records[keys.PREDICTIONS] = ArrayRecord({PROBS: huge})
    with pytest.raises(ReplyError, match="above the cap") as info:
        parse_reply(_reply(records), SHAPE, Codec.INT8)
    assert info.value.reason == "oversized"


def test_absent_metrics_stay_accepted() -> None:
    reply = parse_reply(
        _reply(_records(**{keys.LOCAL_ACCURACY: float("nan"), keys.TRAIN_LOSS: float("nan")})),
        SHAPE,
        Codec.INT8,
    )
    assert np.isnan(reply.local_accuracy) and np.isnan(reply.train_loss)


def test_a_round_of_malformed_replies_is_counted_by_reason_beside_the_valid_ones() -> None:
    replies = [_reply(records, node=i) for i, (records, _) in enumerate(CASES.values())]
    replies += [_reply(_records(), node=100), _reply(_records(), node=101)]
    record = RoundRecord(round=1, clients_selected=len(replies) + 1)  # one never answered
    valid, senders = collect_replies(replies, SHAPE, Codec.INT8, 0, record)
    assert senders == [100, 101] and len(valid) == 2 == record.clients_ok
    expected: dict[str, int] = {}
    for _, reason in CASES.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert record.rejections == expected
    assert record.clients_rejected == len(CASES) and record.clients_failed == 1
