"""The server's messages decode into typed instructions, or say what is wrong with them."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

from clients.fedavg import parse_fedavg
from clients.instructions import parse_evaluate, parse_train, server_round_of
from clients.trace import train_message
from common import keys
from common.codec import Codec, encode
from common.dataset import BandStats
from common.errors import ReplyError

STATS = {keys.NORM_MEAN: [1.0, 2.0, 3.0], keys.NORM_STD: [4, 5, 6]}


def _message(**records: ArrayRecord | ConfigRecord) -> Message:
    return train_message(RecordDict(dict(records)), node_id=1)


def _train(config: dict[str, object], indices: np.ndarray | None = None) -> Message:
    idx = np.array([2, 5]) if indices is None else indices
    record = ArrayRecord(
        {k: Array(a) for k, a in encode(np.full((2, 3), 1 / 3), Codec.FP16).items()}
    )
    record[keys.INDICES] = Array(idx.astype(np.uint16))
    return _message(**{keys.TARGETS: record, keys.TRAIN_CONFIG: ConfigRecord(config)})  # type: ignore[arg-type]


def test_the_round_is_read_before_anything_else_and_defaults_to_zero() -> None:
    assert (
        server_round_of(_message(**{keys.TRAIN_CONFIG: ConfigRecord({keys.SERVER_ROUND: 4})})) == 4
    )
    assert (
        server_round_of(_message(**{keys.TRAIN_CONFIG: ConfigRecord({keys.SERVER_ROUND: "x"})}))
        == 0
    )
    assert server_round_of(_message()) == 0


def test_a_train_message_decodes_into_its_instruction() -> None:
    config = {keys.SERVER_ROUND: 3, keys.CODEC: "fp16", keys.TEMPERATURE: 2.0, keys.KD_WEIGHT: 0.5,
              **STATS}  # fmt: skip
    task = parse_train(_train(config), num_classes=3, num_reference=10)
    assert (task.server_round, task.codec, task.topk, task.temperature) == (3, Codec.FP16, 3, 2.0)
    assert task.indices.tolist() == [2, 5] and task.targets.shape == (2, 3)
    assert task.stats == BandStats((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    assert not task.send_statistics and task.heads == {}
    with pytest.raises(ReplyError, match="outside the reference set of 4"):
        parse_train(_train(config), num_classes=3, num_reference=4)
    for key in (keys.NORM_MEAN, keys.SERVER_ROUND):
        with pytest.raises(ReplyError, match="train message is incomplete"):
            parse_train(_train({k: v for k, v in config.items() if k != key}), 3, 10)
    with pytest.raises(ReplyError, match="incomplete"):
        parse_train(_train({**config, keys.NORM_STD: 1.0}), 3, 10)  # not a list


def test_evaluate_and_fedavg_messages_carry_the_same_band_statistics() -> None:
    evaluate = _message(**{keys.TRAIN_CONFIG: ConfigRecord({keys.SERVER_ROUND: 2, **STATS})})
    assert parse_evaluate(evaluate).stats == BandStats((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    config = {keys.SERVER_ROUND: 2, keys.FEDAVG_OPTIMIZER: "adam", keys.FEDAVG_LR: 0.1,
              keys.FEDAVG_EPOCHS: 1, keys.FREEZE_BN: False, **STATS}  # fmt: skip
    arrays = ArrayRecord({"w": Array(np.zeros(2, np.float32))})
    fedavg = _message(**{keys.FEDAVG_ARRAYS: arrays, keys.TRAIN_CONFIG: ConfigRecord(config)})
    task = parse_fedavg(fedavg)
    assert task.stats == parse_evaluate(evaluate).stats and task.proximal_mu == 0.0
    del config[keys.NORM_MEAN]
    broken = _message(**{keys.FEDAVG_ARRAYS: arrays, keys.TRAIN_CONFIG: ConfigRecord(config)})
    with pytest.raises(ReplyError, match="FedAvg train message is incomplete"):
        parse_fedavg(broken)
    with pytest.raises(ReplyError, match="evaluate message is incomplete"):
        parse_evaluate(_message(**{keys.TRAIN_CONFIG: ConfigRecord({keys.SERVER_ROUND: 2})}))
