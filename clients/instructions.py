"""Decode the server's train and evaluate messages into typed instructions, or say what is
wrong with them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message

from common import keys
from common.codec import Codec, decode
from common.dataset import BandStats
from common.errors import ReplyError


@dataclass(frozen=True)
class TrainInstruction:
    server_round: int
    indices: np.ndarray  # reference indices the reply must cover, in this order
    targets: np.ndarray  # (len(indices), C) soft targets
    codec: Codec
    topk: int
    temperature: float
    kd_weight: float
    stats: BandStats
    send_statistics: bool = False  # also reply with class statistics (common/class_stats.py)
    # architecture -> (weight, bias) of the head the ground fitted (statistics mode)
    heads: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def server_round_of(msg: Message) -> int:
    """The round a message belongs to, 0 when it does not say (read before anything else)."""
    config = msg.content.get(keys.TRAIN_CONFIG)
    value = config.get(keys.SERVER_ROUND, 0) if isinstance(config, ConfigRecord) else 0
    return int(value) if isinstance(value, int | float) else 0


def band_stats(config: ConfigRecord) -> BandStats:
    """The band statistics the server normalises with (KeyError, TypeError or ValueError)."""
    return BandStats.parse(config[keys.NORM_MEAN], config[keys.NORM_STD])


def parse_train(msg: Message, num_classes: int, num_reference: int) -> TrainInstruction:
    content = msg.content
    record, config = content.get(keys.TARGETS), content.get(keys.TRAIN_CONFIG)
    if not isinstance(record, ArrayRecord) or not isinstance(config, ConfigRecord):
        raise ReplyError(
            "keys", f"train message needs {keys.TARGETS!r} arrays and {keys.TRAIN_CONFIG!r} config"
        )
    try:
        codec = Codec.parse(str(config[keys.CODEC]))
        indices = record[keys.INDICES].numpy()
        payload = {k: a.numpy() for k, a in record.items() if k != keys.INDICES}
        stats = band_stats(config)
        server_round = int(config[keys.SERVER_ROUND])  # type: ignore[arg-type]
        temperature = float(config[keys.TEMPERATURE])  # type: ignore[arg-type]
        kd_weight = float(config[keys.KD_WEIGHT])  # type: ignore[arg-type]
        topk = int(config.get(keys.TOPK, 3))  # type: ignore[arg-type]
        send_statistics = bool(int(config.get(keys.SEND_STATISTICS, 0)))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplyError("config", f"train message is incomplete: {exc}") from exc
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ReplyError(
            "indices", f"indices must be a 1-D int array, got {indices.dtype} {indices.shape}"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= num_reference):
        raise ReplyError("indices", f"indices outside the reference set of {num_reference} tiles")
    targets = decode(payload, codec, (len(indices), num_classes))
    heads = _heads(content.get(keys.HEADS), num_classes)
    return TrainInstruction(
        server_round=server_round,
        indices=indices.astype(np.int64),
        targets=targets,
        codec=codec,
        topk=topk,
        temperature=temperature,
        kd_weight=kd_weight,
        stats=stats,
        send_statistics=send_statistics,
        heads=heads,
    )


def _heads(record: object, num_classes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The heads of a train message: ``<arch>.weight`` (C, D) and ``<arch>.bias`` (C,)."""
    if record is None:
        return {}
    if not isinstance(record, ArrayRecord):
        raise ReplyError("keys", f"{keys.HEADS!r} must be an ArrayRecord")
    arrays = {k: a.numpy() for k, a in record.items()}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in arrays:
        arch, _, part = name.rpartition(".")
        if part not in ("weight", "bias") or not arch:
            raise ReplyError("heads", f"unexpected head array {name!r}")
        if arch in out:
            continue
        weight, bias = arrays.get(f"{arch}.weight"), arrays.get(f"{arch}.bias")
        if weight is None or bias is None:
            raise ReplyError("heads", f"head {arch!r} needs both weight and bias")
        if weight.ndim != 2 or weight.shape[0] != num_classes or bias.shape != (num_classes,):
            raise ReplyError("heads", f"head {arch!r} has shapes {weight.shape}, {bias.shape}")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ReplyError("heads", f"head {arch!r} is not finite")
        out[arch] = (weight.astype(np.float32), bias.astype(np.float32))
    return out


@dataclass(frozen=True)
class EvaluateInstruction:
    server_round: int
    stats: BandStats


def parse_evaluate(msg: Message) -> EvaluateInstruction:
    config = msg.content.get(keys.TRAIN_CONFIG)
    if not isinstance(config, ConfigRecord):
        raise ReplyError("keys", f"evaluate message needs a {keys.TRAIN_CONFIG!r} config")
    try:
        stats = band_stats(config)
        server_round = int(config[keys.SERVER_ROUND])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplyError("config", f"evaluate message is incomplete: {exc}") from exc
    return EvaluateInstruction(server_round, stats)
