"""Validate a client's reply before anything touches the knowledge; count what came back."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from common import keys
from common.class_stats import ClassStats
from common.codec import PROBS, SCALE, TOPK_INDEX, Codec, decode
from common.config import ROLES
from common.errors import CodecError, ReplyError
from server.history import RoundRecord

log = logging.getLogger(__name__)

# Why a reply can be rejected (the label values of the Prometheus rejection counter), in the
# order parse_reply checks them:
#   keys       records missing, extra or of the wrong type
#   oversized  arrays above the reply's payload cap (refused before they are deserialised)
#   payload    arrays that do not deserialise
#   indices    predictions for other reference tiles than asked (another row count, or
#              an index array: replies name no indices, only the server's choice counts)
#   codec      wrong dtype, column count or values (NaN, Inf, out of range, rows not summing to 1)
#   role, metrics, statistics: an unknown role, invalid metrics, refused class statistics
REJECTION_REASONS = (
    "keys", "oversized", "payload", "indices", "codec", "role", "metrics", "statistics",
)  # fmt: skip
CODEC_ARRAYS = frozenset({PROBS, SCALE, TOPK_INDEX})  # one row per asked tile, every codec
# Slack on top of the largest honest reply: array headers (~128 bytes each) and key names.
CAP_SLACK_BYTES = 16 * 1024


@dataclass(frozen=True)
class ClientReply:
    node_id: int
    role: str
    probs: np.ndarray  # (n requested, C) float32, validated
    num_examples: int
    local_accuracy: float
    train_loss: float
    bytes_up: int
    class_counts: tuple[int, ...] | None = None
    statistics: ClassStats | None = None  # only when the server asked for them
    train_samples: int = 0
    client_seconds: float = 0.0
    client_name: str = ""  # the client's stable name (keys its trust and statistics)


def parse_reply(
    message: Message, shape: tuple[int, int], codec: Codec, statistics_dim: int = 0
) -> ClientReply:
    """Decode and check one reply; raise :class:`ReplyError` with a short reason if it is bad.

    ``statistics_dim`` > 0: the server asks for class statistics of that many features (a
    client sends them once, so a reply may lack them); statistics it did not ask for, or of
    another shape, are rejected."""
    content = message.content
    expected = {keys.PREDICTIONS, keys.METRICS, keys.INFO}
    if statistics_dim > 0 and keys.CLASS_STATISTICS in content:
        expected.add(keys.CLASS_STATISTICS)  # sent once per client: optional in each reply
    if set(content.keys()) != expected:
        raise ReplyError(
            "keys", f"reply holds records {sorted(content.keys())}, expected {sorted(expected)}"
        )
    preds, metrics, info = content[keys.PREDICTIONS], content[keys.METRICS], content[keys.INFO]
    if not isinstance(preds, ArrayRecord) or not isinstance(metrics, MetricRecord):
        raise ReplyError("keys", "predictions must be an ArrayRecord and metrics a MetricRecord")
    if not isinstance(info, ConfigRecord):
        raise ReplyError("keys", "info must be a ConfigRecord")
    stats_record = content.get(keys.CLASS_STATISTICS)
    if stats_record is not None and not isinstance(stats_record, ArrayRecord):
        raise ReplyError("keys", "statistics must be an ArrayRecord")
    sent = content_bytes(content)
    if sent > (cap := payload_cap(shape, statistics_dim)):
        raise ReplyError(
            "oversized",
            f"reply arrays hold {sent} bytes, above the cap of {cap} for {shape[0]} tiles x "
            f"{shape[1]} classes (twice the largest honest reply plus {CAP_SLACK_BYTES})",
        )
    try:
        payload = {name: arr.numpy() for name, arr in preds.items()}
    except (TypeError, ValueError) as exc:
        raise ReplyError("payload", f"predictions cannot be deserialised: {exc}") from exc
    check_tiles(payload, shape[0])
    try:
        probs = decode(payload, codec, shape)
    except CodecError as exc:
        raise ReplyError("codec", str(exc)) from exc
    role = info.get(keys.ROLE)
    if role not in ROLES:
        raise ReplyError("role", f"unknown role {role!r}")
    num_examples = metrics.get(keys.NUM_EXAMPLES)
    if not isinstance(num_examples, int) or num_examples < 0:
        raise ReplyError(
            "metrics", f"num-examples must be a non-negative int, got {num_examples!r}"
        )
    acc, loss = _accuracy(metrics), _loss(metrics)
    counts = metrics.get(keys.CLASS_COUNTS)
    if counts is not None and (
        not isinstance(counts, list)
        or len(counts) != shape[1]
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
    ):
        raise ReplyError(
            "metrics", f"class-counts must be {shape[1]} non-negative ints, got {counts!r}"
        )
    statistics, bytes_up = None, preds.count_bytes()
    if isinstance(stats_record, ArrayRecord):
        record = stats_record
        try:
            arrays = {name: arr.numpy() for name, arr in record.items()}
            statistics = ClassStats.from_arrays(arrays, shape[1], statistics_dim)
        except (TypeError, ValueError, CodecError) as exc:
            raise ReplyError("statistics", f"class statistics refused: {exc}") from exc
        bytes_up += record.count_bytes()
    return ClientReply(
        node_id=message.metadata.src_node_id,
        role=str(role),
        probs=probs,
        num_examples=num_examples,
        local_accuracy=acc,
        train_loss=loss,
        bytes_up=bytes_up,
        class_counts=tuple(int(c) for c in counts) if counts is not None else None,
        statistics=statistics,
        train_samples=_count(metrics, keys.TRAIN_SAMPLES),
        client_seconds=_cost_seconds(metrics),
        client_name=_name(info),
    )


def payload_cap(shape: tuple[int, int], statistics_dim: int = 0) -> int:
    """The most array bytes a reply for ``shape`` may carry: twice the largest honest reply
    (predictions at float32, the widest codec, with a per-row scale; and, when statistics are
    asked for, counts, sums and the scatter's upper triangle at float32), plus slack."""
    n, c = shape
    honest = 4 * (n * c + n)
    if statistics_dim > 0:
        d = statistics_dim
        honest += 4 * (c + c * d + d * (d + 1) // 2)
    return 2 * honest + CAP_SLACK_BYTES


def check_tiles(payload: dict[str, np.ndarray], asked: int) -> None:
    """Refuse predictions for other reference tiles than the ``asked`` ones: an index array
    (the server knows which tiles it asked; a reply names none), or codec arrays whose rows
    are not one per asked tile. (Other shapes, dtypes and values are the codec's to check.)"""
    if keys.INDICES in payload:
        named = np.asarray(payload[keys.INDICES]).ravel()[:8].tolist()
        raise ReplyError(
            "indices",
            f"reply names reference indices ({named} ...): a reply answers the {asked} tiles "
            "the server asked, in their order, and names none",
        )
    for name in sorted(CODEC_ARRAYS & payload.keys()):  # probs first
        arr = payload[name]
        if arr.ndim >= 1 and arr.shape[0] != asked:
            raise ReplyError(
                "indices",
                f"predictions array {name!r} has {arr.shape[0]} rows for {asked} asked tiles",
            )


def _accuracy(metrics: MetricRecord) -> float:
    """The local accuracy: a fraction in [0, 1], or NaN (absent: the client has no held-out
    tiles); anything else would corrupt the per-role client accuracy."""
    value = _scalar(metrics, keys.LOCAL_ACCURACY)
    if not math.isnan(value) and not 0.0 <= value <= 1.0:
        raise ReplyError("metrics", f"{keys.LOCAL_ACCURACY} must be in [0, 1], got {value!r}")
    return value


def _loss(metrics: MetricRecord) -> float:
    """The training loss: finite and non-negative, or NaN (absent: no training step)."""
    value = _scalar(metrics, keys.TRAIN_LOSS)
    if not math.isnan(value) and not 0.0 <= value < math.inf:
        raise ReplyError(
            "metrics", f"{keys.TRAIN_LOSS} must be finite and non-negative, got {value!r}"
        )
    return value


def _name(info: ConfigRecord) -> str:
    """The stable name a reply carries (what trust and the statistics pool key a client by);
    "" when it has none, or one that is not a short text."""
    name = info.get(keys.CLIENT_NAME, "")
    return name if isinstance(name, str) and 0 < len(name) <= 128 else ""


def _scalar(metrics: MetricRecord, key: str) -> float:
    value = metrics.get(key, float("nan"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplyError("metrics", f"{key} must be a number, got {value!r}")
    return float(value)


def _count(metrics: MetricRecord, key: str) -> int:
    value = metrics.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReplyError("metrics", f"{key} must be a non-negative int, got {value!r}")
    return value


def _cost_seconds(metrics: MetricRecord) -> float:
    value = _scalar(metrics, keys.CLIENT_SECONDS) if keys.CLIENT_SECONDS in metrics else 0.0
    if not 0.0 <= value < 1e7:
        raise ReplyError("metrics", f"{keys.CLIENT_SECONDS} must be non-negative, got {value!r}")
    return value


def content_bytes(content: RecordDict) -> int:
    """Bytes of a message's arrays (what ``count_bytes`` of every ArrayRecord adds up to)."""
    return sum(r.count_bytes() for r in content.values() if isinstance(r, ArrayRecord))


def describe_reply(msg: Message) -> dict[str, Any]:
    """Records and array shapes a reply carried (no values), for the audit trail."""
    if msg.has_error():
        return {"node": msg.metadata.src_node_id, "error": msg.error.reason}
    content = msg.content
    arrays = {
        f"{rk}/{name}": list(arr.shape)
        for rk, rec in content.items()
        if isinstance(rec, ArrayRecord)
        for name, arr in rec.items()
    }
    info = content.get(keys.INFO)
    role = info.get(keys.ROLE) if isinstance(info, ConfigRecord) else None
    return {
        "node": msg.metadata.src_node_id,
        "role": role,
        "records": sorted(content.keys()),
        "arrays": arrays,
    }


def collect_replies(
    replies: Iterable[Message],
    shape: tuple[int, int],
    codec: Codec,
    statistics_dim: int,
    record: RoundRecord,
) -> tuple[list[ClientReply], list[int]]:
    """Validate a round's train replies and count in ``record`` what came back (ok, failed,
    rejected and why, bytes, the clients' cost and local accuracy per role); the valid
    replies and the node ids that sent them. Failures are logged and counted, never raised."""
    valid: list[ClientReply] = []
    senders: list[int] = []
    reasons: Counter[str] = Counter()
    for msg in replies:
        record.replies.append(describe_reply(msg))
        if msg.has_error():
            record.clients_failed += 1
            log.warning("client %d failed: %s", msg.metadata.src_node_id, msg.error.reason)
            continue
        try:
            valid.append(parse_reply(msg, shape, codec, statistics_dim))
            senders.append(msg.metadata.src_node_id)
        except ReplyError as exc:
            reasons[exc.reason] += 1
            log.warning("reply of client %d rejected: %s", msg.metadata.src_node_id, exc)
    # Selected clients that never answered within the timeout count as failed too.
    answered = len(valid) + sum(reasons.values()) + record.clients_failed
    record.clients_failed += max(0, record.clients_selected - answered)
    record.clients_ok = len(valid)
    record.clients_rejected = sum(reasons.values())
    record.rejections = dict(reasons)
    record.bytes_up = sum(r.bytes_up for r in valid)
    record.client_train_samples = sum(r.train_samples for r in valid)
    record.client_seconds = sum(r.client_seconds for r in valid)
    by_role: dict[str, list[float]] = {}
    for r in valid:
        if np.isfinite(r.local_accuracy):
            by_role.setdefault(r.role, []).append(r.local_accuracy)
    record.client_accuracy = {role: float(np.mean(v)) for role, v in sorted(by_role.items())}
    return valid, senders


def client_test_accuracy(replies: Iterable[Message]) -> tuple[dict[str, float], float] | None:
    """The mean test accuracy that evaluate replies report, per role of the sender and over
    every reply (None when none reports one); replies without an accuracy in [0, 1] and a
    role are skipped."""
    by_role: dict[str, list[float]] = {}
    for msg in replies:
        if msg.has_error() or keys.METRICS not in msg.content:
            continue
        metrics, info = msg.content[keys.METRICS], msg.content.get(keys.INFO)
        acc = metrics.get(keys.TEST_ACCURACY) if isinstance(metrics, MetricRecord) else None
        role = info.get(keys.ROLE) if isinstance(info, ConfigRecord) else None
        if isinstance(acc, float) and 0.0 <= acc <= 1.0 and isinstance(role, str):
            by_role.setdefault(role, []).append(acc)
    if not by_role:
        return None
    every = [a for accs in by_role.values() for a in accs]
    return {r: float(np.mean(v)) for r, v in sorted(by_role.items())}, float(np.mean(every))
