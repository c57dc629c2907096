"""What a ClientApp process keeps between messages changes no result: a student kept in memory
trains exactly as one rebuilt from the node's state, a stale one (another process trained the
client since, a round failed half-way, a resumed run) is never used, and memory stays bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict

from clients import resident, round, storage
from clients.app import evaluate, node_key, train
from clients.node import Node
from clients.trace import train_message
from common import keys
from common.codec import Codec, encode
from common.config import RunConfig
from common.federation import Federation, load_federation
from common.model_cache import cache_path
from common.models import build_model
from common.preinstalled import cache_entry
from common.student_file import load_student


def _context(cfg: RunConfig, partition_id: int, state: RecordDict, run_id: int = 1) -> Context:
    return Context(
        run_id=run_id,
        node_id=100 + partition_id,
        node_config={keys.NODE_PARTITION_ID: partition_id},
        state=state,
        run_config=cfg.to_mapping(),
    )


def _message(fed: Federation, server_round: int) -> Message:
    rng = np.random.default_rng(server_round)
    indices = np.sort(rng.choice(len(fed.partition.reference), 6, replace=False))
    targets = rng.dirichlet(np.ones(10), len(indices))
    record = ArrayRecord({k: Array(a) for k, a in encode(targets, Codec.INT8).items()})
    record[keys.INDICES] = Array(indices.astype(np.uint16))
    config = {keys.SERVER_ROUND: server_round, keys.CODEC: "int8", keys.TEMPERATURE: 2.0,
              keys.KD_WEIGHT: 1.0, keys.NORM_MEAN: list(fed.stats.mean),
              keys.NORM_STD: list(fed.stats.std)}  # fmt: skip
    content = RecordDict({keys.TARGETS: record, keys.TRAIN_CONFIG: ConfigRecord(config)})
    return train_message(content, node_id=1)


def _predictions(reply: Message) -> dict[str, np.ndarray]:
    assert not reply.has_error(), reply.error
    return {k: a.numpy() for k, a in reply.content[keys.PREDICTIONS].items()}


def _weights(state: RecordDict) -> dict[str, torch.Tensor]:
    record = state[storage.STUDENT_STATE]
    assert isinstance(record, ArrayRecord)
    return record.to_torch_state_dict()


def _same(a: dict[str, np.ndarray] | dict[str, torch.Tensor], b: object) -> bool:
    assert isinstance(b, dict) and a.keys() == b.keys()
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


@pytest.fixture
def cfg(fixture_data: Path, tmp_path: Path) -> RunConfig:
    return RunConfig(data_dir=str(fixture_data), num_clients=3, client_init="scratch",
                     out_dir=str(tmp_path / "run"), batch_size=16)  # fmt: skip


def _three_rounds(cfg: RunConfig, *, rebuild: bool) -> tuple[list[dict[str, np.ndarray]], list]:
    """Rounds 1-3 of clients 0, 1, 2 in one process; ``rebuild``: forget everything kept
    before every message, as a process that never saw the client would."""
    fed = load_federation(cfg)
    states = [RecordDict() for _ in range(3)]
    replies = []
    for server_round in (1, 2, 3):
        for k in range(3):
            if rebuild:
                resident.forget()
            replies.append(
                _predictions(train(_message(fed, server_round), _context(cfg, k, states[k])))
            )
    return replies, [_weights(s) for s in states]


def test_a_student_kept_in_memory_trains_exactly_as_one_rebuilt_from_the_state(
    cfg: RunConfig,
) -> None:
    kept_replies, kept_weights = _three_rounds(cfg, rebuild=False)
    assert resident.held()["students"] == 3
    resident.forget()
    rebuilt_replies, rebuilt_weights = _three_rounds(cfg, rebuild=True)
    assert all(_same(a, b) for a, b in zip(kept_replies, rebuilt_replies, strict=True))
    assert all(_same(a, b) for a, b in zip(kept_weights, rebuilt_weights, strict=True))


def test_the_same_module_trains_on_while_the_state_names_it(cfg: RunConfig) -> None:
    fed, state = load_federation(cfg), RecordDict()
    context = _context(cfg, 1, state)
    node = Node.of(context)
    train(_message(fed, 1), context)
    first = storage.current_student(state, node, fed, key=node_key(context))
    train(_message(fed, 2), context)
    second = storage.current_student(state, node, fed, key=node_key(context))
    assert second is first  # trained on in place, no rebuild
    assert _same(second.state_dict(), _weights(state))
    other = storage.current_student(state, node, fed)  # without the key: from the state
    assert other is not first and _same(other.state_dict(), _weights(state))


def test_a_client_another_process_trained_since_is_rebuilt_from_its_state(
    cfg: RunConfig,
) -> None:
    fed, state = load_federation(cfg), RecordDict()
    context = _context(cfg, 1, state)
    node = Node.of(context)
    train(_message(fed, 1), context)  # process A trains round 1 and keeps the module
    token = storage.student_token(state)
    assert token is not None
    stale = storage.current_student(state, node, fed, key=node_key(context), take=True)
    resident.forget()  # Flower routes round 2 to process B, which knows nothing of the client
    train(_message(fed, 2), context)
    assert storage.student_token(state) != token
    resident.forget()  # round 3 goes back to process A, which still holds its round-1 module
    resident.keep_student(node_key(context), token, node.arch, stale)
    reply = _predictions(train(_message(fed, 3), context))
    fresh = RecordDict()  # the same three rounds in processes that keep nothing
    for server_round in (1, 2, 3):
        resident.forget()
        fresh_reply = _predictions(train(_message(fed, server_round), _context(cfg, 1, fresh)))
    assert _same(reply, fresh_reply)
    assert _same(_weights(state), _weights(fresh))


def test_a_round_that_fails_half_way_leaves_no_half_trained_student(
    cfg: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed, state = load_federation(cfg), RecordDict()
    context = _context(cfg, 2, state)
    train(_message(fed, 1), context)
    before = _weights(state)
    real_fit = round.fit

    def fit_then_fail(model: torch.nn.Module, *args: object, **kwargs: object) -> float:
        real_fit(model, *args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("the node lost power")

    monkeypatch.setattr(round, "fit", fit_then_fail)
    with pytest.raises(RuntimeError, match="lost power"):
        train(_message(fed, 2), context)
    monkeypatch.undo()
    assert _same(_weights(state), before)  # the state still holds round 1's student
    reply = _predictions(train(_message(fed, 2), context))
    fresh = RecordDict()
    resident.forget()
    train(_message(fed, 1), _context(cfg, 2, fresh))
    resident.forget()
    assert _same(reply, _predictions(train(_message(fed, 2), _context(cfg, 2, fresh))))


def test_a_resumed_run_starts_from_the_student_file_not_from_memory(cfg: RunConfig) -> None:
    fed, state = load_federation(cfg), RecordDict()
    context = _context(cfg, 0, state)
    for server_round in (1, 2):
        train(_message(fed, server_round), context)
    node = Node.of(context)
    assert node.state_dir is not None
    saved = storage.latest_student(node.state_dir, node.role, 0, before_round=2)
    assert saved is not None  # round 1's file: the resumed server redoes round 2
    resumed_cfg = cfg.with_values({"resume": 1})
    resumed = _context(resumed_cfg, 0, RecordDict(), run_id=2)
    student = storage.current_student(
        resumed.state, Node.of(resumed), fed, 2, key=node_key(resumed), take=True
    )
    assert _same(student.state_dict(), load_student(saved).state)
    # the same node id in the same run with a fresh state (a restarted SuperNode) too
    restarted = _context(resumed_cfg, 0, RecordDict())
    again = storage.current_student(
        restarted.state, Node.of(restarted), fed, 2, key=node_key(restarted)
    )
    assert _same(again.state_dict(), load_student(saved).state)


def test_evaluate_scores_the_kept_student(cfg: RunConfig) -> None:
    fed, state = load_federation(cfg), RecordDict()
    context = _context(cfg, 1, state)
    train(_message(fed, 1), context)
    config = ConfigRecord({keys.SERVER_ROUND: 1, keys.NORM_MEAN: list(fed.stats.mean),
                           keys.NORM_STD: list(fed.stats.std)})  # fmt: skip
    message = train_message(RecordDict({keys.TRAIN_CONFIG: config}), 1)
    kept = evaluate(message, context).content[keys.METRICS]
    resident.forget()
    rebuilt = evaluate(message, context).content[keys.METRICS]
    assert dict(kept) == dict(rebuilt) and keys.TEST_ACCURACY in kept


def test_memory_stays_bounded_over_many_clients(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3 * resident.STUDENTS, shard_size=8,
                    client_init="scratch", batch_size=16, reference_per_round=4)  # fmt: skip
    fed = load_federation(cfg)
    for k in range(cfg.num_clients):
        train(_message(fed, 1), _context(cfg, k, RecordDict()))
    held = resident.held()
    assert held["students"] == resident.STUDENTS
    assert held["shards"] == resident.SHARDS
    assert held["reference"] == 1  # every client of the round got the same tiles
    assert held["spare"] <= resident.SPARE * 3  # per architecture


def test_the_pre_installed_weights_are_read_once_and_copied(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    name, entry = cache_entry(cfg, fed, "small")  # the global student's pre-training
    path = cache_path(name, fed, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_model("small", 3, 10, seed=7).state_dict(), path)
    first = resident.preinstalled(cfg, fed, "small")
    path.unlink()  # read once: the file is not needed again in this process
    second = resident.preinstalled(cfg, fed, "small")
    assert second is not first and _same(second.state_dict(), first.state_dict())
    with torch.no_grad():
        next(second.parameters()).add_(1.0)  # training one client's copy ...
    third = resident.preinstalled(cfg, fed, "small")
    assert _same(third.state_dict(), first.state_dict())  # ... leaves the others alone


def test_an_lru_forgets_the_least_recently_used() -> None:
    lru: resident.LRU[str, int] = resident.LRU(2)
    assert lru.put("a", 1) == [] and lru.put("b", 2) == []
    assert lru.get("a") == 1  # now b is the oldest
    assert lru.put("c", 3) == [2]
    assert "b" not in lru and len(lru) == 2 and lru.pop("a") == 1 and lru.get("a") is None
