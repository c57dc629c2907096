"""The server's train and evaluate messages (what ``clients/instructions.py`` decodes)."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, RecordDict

from common import keys
from common.codec import Codec, encode
from server.heads import DeployedHeads


def targets_record(
    targets: np.ndarray, indices: np.ndarray, num_reference: int, codec: Codec, topk: int
) -> ArrayRecord:
    """The soft targets on the round's reference tiles, encoded, with their indices."""
    payload = encode(targets, codec, k=topk)
    record = ArrayRecord({name: Array(a) for name, a in payload.items()})
    # Indices travel in the narrowest unsigned type that holds them (2 bytes up to 65,536
    # reference tiles): at 500 tiles a round, int64 would be a fifth of the download.
    index_type = np.uint16 if num_reference <= np.iinfo(np.uint16).max + 1 else np.int64
    record[keys.INDICES] = Array(indices.astype(index_type))
    return record


def train_config(
    config: ConfigRecord, server_round: int, codec: Codec, topk: int, send_statistics: bool
) -> ConfigRecord:
    """The run's train config with this round's number and codec (and, with
    ``send_statistics``, the request for class statistics)."""
    cfg = ConfigRecord(dict(config))
    cfg[keys.SERVER_ROUND] = server_round
    cfg[keys.CODEC] = codec.value
    cfg[keys.TOPK] = topk
    if send_statistics:
        cfg[keys.SEND_STATISTICS] = 1
    return cfg


def train_messages(
    node_ids: list[int],
    targets: ArrayRecord,
    config: ConfigRecord,
    node_archs: dict[int, str],
    heads: DeployedHeads | None,
) -> list[Message]:
    """One train message per node; with ``heads``, each node gets its own architecture's
    head when ``node_archs`` knows it, else every architecture's."""
    contents = {
        arch: RecordDict({keys.TARGETS: targets, keys.TRAIN_CONFIG: config})
        for arch in {node_archs.get(n) for n in node_ids}
    }
    if heads is not None:
        for arch, content in contents.items():
            content[keys.HEADS] = heads.record(None if arch is None else [arch])
    return [
        Message(
            content=contents[node_archs.get(node)],
            dst_node_id=node,
            message_type=MessageType.TRAIN,
        )
        for node in node_ids
    ]


def evaluation_due(server_round: int, every: int, num_rounds: int) -> bool:
    """Do the clients score their students after ``server_round``? Every ``every`` rounds
    and after the last (``every`` = 0: never)."""
    return every > 0 and (server_round % every == 0 or server_round == num_rounds)


def evaluate_messages(
    node_ids: list[int], config: ConfigRecord, server_round: int
) -> list[Message]:
    """One evaluate message per node: score the student you would deploy on the test split."""
    cfg = ConfigRecord(dict(config))
    cfg[keys.SERVER_ROUND] = server_round
    content = RecordDict({keys.TRAIN_CONFIG: cfg})
    return [
        Message(content=content, dst_node_id=node, message_type=MessageType.EVALUATE)
        for node in node_ids
    ]
