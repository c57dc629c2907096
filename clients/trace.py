"""Record the train messages a simulated client receives, to replay them outside Flower.

``skydistill bench scale`` sets ``trace-dir``: every client that trains saves the content of
its train message (the encoded targets, the reference indices and the config record) as
``r<round>-p<partition>.npz``. The bench's plain loop then rebuilds exactly those messages
and gives them to the same ClientApp function in one process, without Flower or Ray.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, Metadata, RecordDict

from common import keys

_CONFIG = "__config__"
_NAME = re.compile(r"r(\d+)-p(\d+)\.npz")


@dataclass(frozen=True)
class TracedTrain:
    server_round: int
    partition_id: int
    content: RecordDict


def train_message(content: RecordDict, node_id: int, run_id: int = 1) -> Message:
    """A train message for a ClientApp function called directly (no SuperLink sets its ids)."""
    metadata = Metadata(
        run_id=run_id,
        message_id=f"replay-{node_id}",
        src_node_id=0,
        dst_node_id=node_id,
        reply_to_message_id="",
        group_id="",
        created_at=time.time(),
        ttl=3600.0,
        message_type=MessageType.TRAIN,
    )
    # Flower's internal constructor path (metadata given): the typed overloads omit it.
    message: Message = Message(content=content, metadata=metadata)  # type: ignore[call-overload]
    return message


def trace_path(folder: Path, server_round: int, partition_id: int) -> Path:
    return folder / f"r{server_round:05d}-p{partition_id:05d}.npz"


def save_train(folder: Path, content: RecordDict, server_round: int, partition_id: int) -> Path:
    """Save a train message's content (targets arrays and config) for a later replay."""
    record, config = content[keys.TARGETS], content[keys.TRAIN_CONFIG]
    if not isinstance(record, ArrayRecord) or not isinstance(config, ConfigRecord):
        raise TypeError("a train message holds an ArrayRecord and a ConfigRecord")
    arrays = {name: arr.numpy() for name, arr in record.items()}
    arrays[_CONFIG] = np.frombuffer(json.dumps(dict(config)).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    path = trace_path(folder, server_round, partition_id)
    path.write_bytes(buffer.getvalue())  # read after the run: no fsync inside timed rounds
    return path


def load_trace(folder: Path) -> list[TracedTrain]:
    """Every saved train message in ``folder``, by round then partition."""
    found: list[TracedTrain] = []
    for path in sorted(folder.glob("r*-p*.npz")):
        match = _NAME.fullmatch(path.name)
        if match is None:
            continue
        with np.load(path) as data:
            config = json.loads(bytes(data[_CONFIG]).decode())
            record = ArrayRecord(
                {name: Array(np.array(data[name])) for name in data.files if name != _CONFIG}
            )
        content = RecordDict({keys.TARGETS: record, keys.TRAIN_CONFIG: ConfigRecord(config)})
        found.append(TracedTrain(int(match[1]), int(match[2]), content))
    return sorted(found, key=lambda t: (t.server_round, t.partition_id))
