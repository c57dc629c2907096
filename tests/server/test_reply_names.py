"""A reply carries its client's stable name (what trust and the statistics pool key it by)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict

from clients.reply import build_reply
from common import keys
from common.codec import Codec
from server.replies import parse_reply

N, C = 5, 4


def _reply(name: str) -> Message:
    instruction = Message(
        RecordDict({"x": ConfigRecord({"a": 1})}), dst_node_id=9, message_type=MessageType.TRAIN
    )
    probs = np.full((N, C), 1 / C, np.float32)
    content = build_reply(
        probs, np.arange(N), C, Codec.FP32, "drone", {keys.NUM_EXAMPLES: 3}, client_name=name
    )
    return Message(content, reply_to=instruction)


def test_every_reply_carries_its_name_statistics_or_not() -> None:
    assert parse_reply(_reply("drone-12"), (N, C), Codec.FP32).client_name == "drone-12"
    assert parse_reply(_reply(""), (N, C), Codec.FP32).client_name == ""


@pytest.mark.parametrize("name", [7, "x" * 129])
def test_a_name_that_is_not_short_text_is_ignored(name: object) -> None:
    msg = _reply("drone-1")
    msg.content[keys.INFO][keys.CLIENT_NAME] = name  # type: ignore[index]
    assert parse_reply(msg, (N, C), Codec.FP32).client_name == ""
