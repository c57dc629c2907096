"""The ClientApp's handlers, called in-process on fixture data (no Flower runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict

from clients import storage
from clients.app import evaluate, train
from clients.trace import train_message
from common import keys
from common.codec import Codec, decode, encode
from common.config import RunConfig
from common.federation import Federation, load_federation
from common.models import build_model
from common.student_file import load_student
from tests.clients.contexts import node_context


def _context(cfg: RunConfig, partition_id: int, state: RecordDict) -> Context:
    return node_context(cfg, {keys.NODE_PARTITION_ID: partition_id}, state)


def _stats(fed: Federation) -> dict[str, list[float]]:
    return {keys.NORM_MEAN: list(fed.stats.mean), keys.NORM_STD: list(fed.stats.std)}


def _fedkd_message(fed: Federation, server_round: int, indices: np.ndarray) -> Message:
    targets = np.random.default_rng(server_round).dirichlet(np.ones(10), len(indices))
    record = ArrayRecord({k: Array(a) for k, a in encode(targets, Codec.INT8).items()})
    record[keys.INDICES] = Array(indices.astype(np.uint16))
    config = {keys.SERVER_ROUND: server_round, keys.CODEC: "int8", keys.TEMPERATURE: 2.0,
              keys.KD_WEIGHT: 1.0, **_stats(fed)}  # fmt: skip
    content = RecordDict({keys.TARGETS: record, keys.TRAIN_CONFIG: ConfigRecord(config)})
    return train_message(content, node_id=1)


@pytest.fixture
def cfg(fixture_data: Path, tmp_path: Path) -> RunConfig:
    return RunConfig(data_dir=str(fixture_data), num_clients=3, client_init="scratch",
                     out_dir=str(tmp_path), batch_size=16)  # fmt: skip


def test_a_fedkd_round_replies_with_predictions_on_the_requested_tiles_only(
    cfg: RunConfig, tmp_path: Path
) -> None:
    fed, state = load_federation(cfg), RecordDict()
    indices = np.array([1, 4, 6])
    replies = [train(_fedkd_message(fed, r, indices), _context(cfg, 1, state)) for r in (1, 2)]
    for reply in replies:
        assert not reply.has_error()
        assert sorted(reply.content.keys()) == [keys.INFO, keys.METRICS, keys.PREDICTIONS]
        payload = {k: a.numpy() for k, a in reply.content[keys.PREDICTIONS].items()}
        probs = decode(payload, Codec.INT8, (3, 10))
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-2)
        metrics = reply.content[keys.METRICS]
        assert metrics[keys.NUM_EXAMPLES] == sum(metrics[keys.CLASS_COUNTS]) > 0
        assert metrics[keys.TRAIN_SAMPLES] > 0 and metrics[keys.CLIENT_SECONDS] > 0
        assert reply.content[keys.INFO][keys.ROLE] == "drone"
    a, b = (r.content[keys.PREDICTIONS]["probs"].numpy() for r in replies)
    assert not np.array_equal(a, b)  # round 2 trained on from round 1's student
    files = storage.saved_students(tmp_path, "drone", 1)
    assert [r for r, _ in files] == [1, 2] and load_student(files[-1][1]).arch == "small"


def test_evaluate_scores_the_kept_student_and_nothing_before_it(cfg: RunConfig) -> None:
    fed, state = load_federation(cfg), RecordDict()
    message = train_message(
        RecordDict({keys.TRAIN_CONFIG: ConfigRecord({keys.SERVER_ROUND: 1, **_stats(fed)})}), 1
    )
    before = evaluate(message, _context(cfg, 0, state)).content[keys.METRICS]
    assert dict(before) == {keys.NUM_EXAMPLES: 0}
    train(_fedkd_message(fed, 1, np.array([0, 2])), _context(cfg, 0, state))
    after = evaluate(message, _context(cfg, 0, state)).content[keys.METRICS]
    assert after[keys.NUM_EXAMPLES] == len(fed.test_split())
    assert 0.0 <= after[keys.TEST_ACCURACY] <= 1.0 and keys.LOCAL_ACCURACY in after


def test_a_fedavg_round_sends_trained_weights_back(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3, method="fedavg")
    fed = load_federation(cfg)
    model = build_model("tiny", 3, 10, seed=1)
    config = {keys.SERVER_ROUND: 1, keys.FEDAVG_OPTIMIZER: "sgd", keys.FEDAVG_LR: 0.01,
              keys.FEDAVG_EPOCHS: 1, keys.FREEZE_BN: False, **_stats(fed)}  # fmt: skip
    arrays = ArrayRecord(model.state_dict())
    content = RecordDict({keys.FEDAVG_ARRAYS: arrays, keys.TRAIN_CONFIG: ConfigRecord(config)})
    reply = train(train_message(content, node_id=1), _context(cfg, 2, RecordDict()))
    assert sorted(reply.content.keys()) == [keys.FEDAVG_ARRAYS, keys.INFO, keys.METRICS]
    sent = reply.content[keys.FEDAVG_ARRAYS].to_torch_state_dict()
    assert not np.array_equal(sent["head.weight"].numpy(), model.head.weight.detach().numpy())
    metrics = reply.content[keys.METRICS]
    assert metrics[keys.TRAIN_SAMPLES] == metrics[keys.NUM_EXAMPLES] > 0
    assert reply.content[keys.INFO][keys.ROLE] == "ground-station"
