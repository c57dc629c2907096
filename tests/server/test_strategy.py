"""FedKD's hooks on crafted replies (real Flower messages, no network)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from common import keys
from common.class_stats import ClassStats
from common.codec import Codec, encode
from common.fleet.schedule import Schedule
from server.contact_fedkd import ContactFedKD
from server.knowledge import Knowledge
from server.replies import ClientReply
from server.strategy import FedKD
from tests.server.loopback import LoopbackGrid

C = 4
N_REF = 30


def _teacher() -> np.ndarray:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(C), N_REF).astype(np.float32)
    return p


OPTIONS: dict[str, object] = {
    "codec": Codec.FP32,
    "reference_per_round": 10,
    "fraction_train": 1.0,
    "min_available_nodes": 1,
    "seed": 0,
}


def _strategy(**kw: object) -> FedKD:
    return FedKD(Knowledge(_teacher(), teacher_mix=0.5), **{**OPTIONS, **kw})  # type: ignore[arg-type]


def _contact_strategy(schedule: Schedule[ClientReply], **kw: object) -> ContactFedKD:
    knowledge = Knowledge(_teacher(), teacher_mix=0.5)
    return ContactFedKD(knowledge, schedule=schedule, **{**OPTIONS, **kw})


def _reply(instruction: Message, probs: np.ndarray, examples: int, role: str = "drone") -> Message:
    payload = encode(probs, Codec.FP32)
    content = RecordDict(
        {
            keys.PREDICTIONS: ArrayRecord({k: Array(v) for k, v in payload.items()}),
            keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: examples, keys.LOCAL_ACCURACY: 0.5}),
            keys.INFO: ConfigRecord({keys.ROLE: role}),
        }
    )
    return Message(content, reply_to=instruction)


def test_configure_sends_targets_for_sampled_indices_to_every_node() -> None:
    s = _strategy()
    msgs = list(
        s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([11, 12, 13]))
    )
    assert sorted(m.metadata.dst_node_id for m in msgs) == [11, 12, 13]
    record = msgs[0].content[keys.TARGETS]
    idx = record[keys.INDICES].numpy()
    assert len(idx) == 10 and len(np.unique(idx)) == 10
    assert idx.dtype == np.uint16  # 2 bytes per index on the wire
    np.testing.assert_allclose(record["probs"].numpy(), s.knowledge.teacher[idx], atol=1e-6)
    assert s.current is not None and s.current.bytes_down == 3 * record.count_bytes()


def test_aggregate_mixes_weighted_mean_with_teacher_and_counts_failures() -> None:
    s = _strategy()
    msgs = list(
        s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1, 2, 3, 4]))
    )
    idx = msgs[0].content[keys.TARGETS][keys.INDICES].numpy()
    one_hot = np.zeros((10, C), np.float32)
    one_hot[:, 0] = 1
    uniform = np.full((10, C), 1 / C, np.float32)
    bad = np.full((9, C), 1 / C, np.float32)  # wrong number of rows
    replies = [
        _reply(msgs[0], one_hot, 3, "satellite"),
        _reply(msgs[1], uniform, 1, "drone"),
        _reply(msgs[2], bad, 1),
        Message(Error(code=1, reason="node vanished"), reply_to=msgs[3]),
    ]
    arrays, metrics = s.aggregate_train(1, replies)
    assert arrays is not None and metrics is not None
    expected_agg = 0.75 * one_hot + 0.25 * uniform
    expected = 0.5 * s.knowledge.teacher[idx] + 0.5 * expected_agg
    np.testing.assert_allclose(s.knowledge.targets[idx], expected, atol=1e-6)
    untouched = np.setdiff1d(np.arange(N_REF), idx)
    np.testing.assert_array_equal(s.knowledge.targets[untouched], s.knowledge.teacher[untouched])
    rec = s.current
    assert rec is not None
    assert (rec.clients_ok, rec.clients_failed, rec.clients_rejected) == (2, 1, 1)
    assert rec.rejections == {"indices": 1}  # 9 rows for 10 asked tiles
    assert rec.client_accuracy == {"drone": 0.5, "satellite": 0.5}
    assert rec.bytes_up > 2 * 10 * C * 4


@pytest.mark.parametrize("rule", ["mean", "history"])
def test_history_leaves_a_liar_out_of_the_knowledge_and_every_rule_reports_trust(
    rule: str,
) -> None:
    from server.aggregation import Rule

    s = _strategy(rule=Rule.parse(rule))
    grid = LoopbackGrid([1, 2, 3, 4])
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), grid))
    idx = msgs[0].content[keys.TARGETS][keys.INDICES].numpy()
    honest = np.eye(C, dtype=np.float32)[np.arange(10) % C] * 0.7 + 0.3 / C
    liar = np.eye(C, dtype=np.float32)[(np.arange(10) + 2) % C]
    replies = [_reply(m, honest, 5) for m in msgs[:3]] + [_reply(msgs[3], liar, 5)]
    s.aggregate_train(1, replies)
    rec = s.current
    assert rec is not None and rec.trust["under_threshold"] == 1
    assert rec.trust["flagged"] == [f"node-{msgs[3].metadata.dst_node_id}"]
    mixed = 0.5 * s.knowledge.teacher[idx]
    if rule == "history":  # the liar is left out: the honest mean alone
        np.testing.assert_allclose(s.knowledge.targets[idx], mixed + 0.5 * honest, atol=1e-6)
    else:  # the mean takes it in, trust only watches
        agg = 0.75 * honest + 0.25 * liar
        np.testing.assert_allclose(s.knowledge.targets[idx], mixed + 0.5 * agg, atol=1e-6)


def test_no_valid_reply_leaves_knowledge_unchanged() -> None:
    s = _strategy()
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1])))
    nan = np.full((10, C), np.nan, np.float32)
    content = RecordDict(
        {
            keys.PREDICTIONS: ArrayRecord({"probs": Array(nan)}),
            keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 5}),
            keys.INFO: ConfigRecord({keys.ROLE: "drone"}),
        }
    )
    arrays, _ = s.aggregate_train(1, [Message(content, reply_to=msgs[0])])
    assert arrays is None
    np.testing.assert_array_equal(s.knowledge.targets, s.knowledge.teacher)
    assert s.current is not None and s.current.rejections == {"codec": 1}


def test_unanswered_nodes_count_as_failed() -> None:
    s = _strategy()
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1, 2, 3])))
    s.aggregate_train(1, [_reply(msgs[0], np.full((10, C), 1 / C, np.float32), 4)])
    assert s.current is not None
    assert (s.current.clients_ok, s.current.clients_failed) == (1, 2)


def test_evaluation_rounds_and_per_role_test_accuracy() -> None:
    s = _strategy(evaluate_every=3, num_rounds=4)
    grid = LoopbackGrid([1, 2, 3])
    assert list(s.configure_evaluate(1, s.knowledge_record(), ConfigRecord(), grid)) == []
    assert len(list(s.configure_evaluate(3, s.knowledge_record(), ConfigRecord(), grid))) == 3
    msgs = list(s.configure_evaluate(4, s.knowledge_record(), ConfigRecord(), grid))  # last
    assert {m.metadata.message_type for m in msgs} == {"evaluate"}
    s.configure_train(4, s.knowledge_record(), ConfigRecord(), grid)

    def reply(msg: Message, role: str, metrics: dict[str, float | int]) -> Message:
        content = RecordDict(
            {keys.METRICS: MetricRecord(metrics), keys.INFO: ConfigRecord({keys.ROLE: role})}
        )
        return Message(content, reply_to=msg)

    replies = [
        reply(msgs[0], "drone", {keys.TEST_ACCURACY: 0.8, keys.NUM_EXAMPLES: 10}),
        reply(msgs[1], "drone", {keys.TEST_ACCURACY: 0.6, keys.NUM_EXAMPLES: 10}),
        reply(msgs[2], "satellite", {keys.NUM_EXAMPLES: 0}),  # no student yet: not counted
    ]
    out = s.aggregate_evaluate(4, replies)
    assert out is not None and s.current is not None
    assert s.current.client_test_accuracy == {"drone": pytest.approx(0.7)}
    assert s.current.client_test_accuracy_mean == pytest.approx(0.7)


def test_contact_aware_round_sends_to_contacts_and_merges_a_stale_reply() -> None:
    from common.fleet.schedule import ALWAYS, ContactAwareSchedule, ContactPlan

    # client 0: always online; 1: replies 2.5 h later (round 3); 2: after 10 h; 3: never
    windows = [list(ALWAYS), [(0.1, 0.2), (2.5, 2.6)], [(0.1, 0.2), (10.0, 10.1)], []]
    schedule: ContactAwareSchedule[ClientReply] = ContactAwareSchedule(
        ContactPlan(windows),
        window_hours=1.0,
        max_clients=4,
        max_staleness=2,
        decay=0.5,
        train_hours=0.25,
    )
    s = _contact_strategy(schedule)
    s.use_directory({100: 0, 101: 1, 102: 2, 103: 3}, {})
    grid = LoopbackGrid([100, 101, 102, 103])

    def one_hot(c: int) -> np.ndarray:
        p = np.zeros((10, C), np.float32)
        p[:, c] = 1
        return p

    def run_round(r: int, classes: dict[int, int]) -> np.ndarray:
        msgs = list(s.configure_train(r, s.knowledge_record(), ConfigRecord(), grid))
        assert s.current is not None and s.current.simulated_hours == float(r)
        sent = {m.metadata.dst_node_id: m for m in msgs}
        assert sorted(sent) == sorted(classes)
        s.aggregate_train(r, [_reply(sent[n], one_hot(c), 1) for n, c in classes.items()])
        return np.asarray(msgs[0].content[keys.TARGETS][keys.INDICES].numpy(), dtype=np.int64)

    idx1 = run_round(1, {100: 0, 101: 1, 102: 2})
    assert s.current is not None and s.current.replies_held == 2 and s.updated
    np.testing.assert_allclose(
        s.knowledge.targets[idx1], 0.5 * s.knowledge.teacher[idx1] + 0.5 * one_hot(0), atol=1e-6
    )
    run_round(2, {100: 0})  # 101 and 102 still owe their round-1 replies
    idx3 = run_round(3, {100: 3})
    rec = s.current
    assert rec is not None and (rec.stale_accepted, rec.stale_dropped) == (1, 0)
    # round 3's own reply weighs 1, client 1's round-1 reply 0.5 ** 2 on the rows both cover
    for row in np.union1d(idx1, idx3):
        in1, in3 = row in idx1, row in idx3
        agg = (in3 * one_hot(3)[0] + in1 * 0.25 * one_hot(1)[0]) / (in3 + 0.25 * in1)
        expected = 0.5 * s.knowledge.teacher[row] + 0.5 * agg
        np.testing.assert_allclose(s.knowledge.targets[row], expected, atol=1e-6)


def _sampled_clients(node_ids: list[int], seed: int) -> list[list[int]]:
    """Clients (partition ids 0..9) a strategy samples in three rounds, when node ``i``
    serves partition ``i``."""
    s = FedKD(
        Knowledge(_teacher(), teacher_mix=0.5),
        reference_per_round=10,
        fraction_train=0.3,
        min_available_nodes=1,
        seed=seed,
        sample_by_client=True,
    )
    s.use_directory({node: client for client, node in enumerate(node_ids)}, {})
    grid = LoopbackGrid(node_ids)
    rounds = []
    for r in (1, 2, 3):
        messages = s.configure_train(r, ArrayRecord(), ConfigRecord(), grid)
        nodes = [m.metadata.dst_node_id for m in messages]
        rounds.append(sorted(s.node_clients[n] for n in nodes))
    return rounds


def test_sampling_by_client_is_independent_of_node_ids() -> None:
    """Flower draws new node ids every run: sampling clients keeps the same clients per round."""
    first = _sampled_clients(list(range(100, 110)), seed=7)
    rng = np.random.default_rng(1)
    second = _sampled_clients([int(n) for n in rng.choice(10**9, 10, replace=False)], seed=7)
    assert first == second
    assert all(len(r) == 3 for r in first)
    assert len({tuple(r) for r in first}) > 1  # rounds differ from each other
    assert _sampled_clients(list(range(100, 110)), seed=8) != first


def _statistics_strategy() -> tuple[FedKD, np.ndarray, np.ndarray]:
    """A strategy fusing class statistics; the reference tiles' features and their classes."""
    from common.class_stats import ClassStats
    from server.evidence import StatisticsKnowledge

    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4, (C, 5))
    ref_y = np.arange(N_REF) % C
    ref = centres[ref_y] + rng.normal(0, 1, (N_REF, 5))
    # the archive holds classes 0-2 only: class 3 is what only the clients know
    arch_y = rng.integers(0, 3, 200)
    archive = ClassStats.of(centres[arch_y] + rng.normal(0, 1, (200, 5)), arch_y, C)
    teacher = np.full((N_REF, C), 0.1, np.float32)
    teacher[np.arange(N_REF), np.minimum(ref_y, 2)] = 0.7  # never says class 3
    strategy = FedKD(
        Knowledge(teacher, teacher_mix=1.0),
        codec=Codec.FP32,
        reference_per_round=10,
        fraction_train=1.0,
        min_available_nodes=1,
        seed=0,
        statistics=StatisticsKnowledge(archive, ref, views=1, temperature=1.0),
    )
    return strategy, centres, ref_y


def _statistics_reply(msg: Message, stats: ClassStats | None, examples: int, name: str) -> Message:
    """A statistics-mode reply built by the client's own guard: no tile, maybe statistics."""
    from clients.reply import build_reply

    content = build_reply(
        np.zeros((0, C), np.float32),
        np.arange(0),
        C,
        Codec.FP32,
        "drone",
        {keys.NUM_EXAMPLES: examples},
        statistics=stats,
        client_name=name,
    )
    return Message(content, reply_to=msg)


def test_class_statistics_bring_a_class_the_teacher_lacks_into_the_knowledge() -> None:
    from common.class_stats import ClassStats

    s, centres, ref_y = _statistics_strategy()
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1, 2])))
    assert msgs[0].content[keys.TRAIN_CONFIG][keys.SEND_STATISTICS] == 1
    # no tile is asked: an untrained backbone's predictions tell the ground nothing new
    assert len(msgs[0].content[keys.TARGETS][keys.INDICES].numpy()) == 0
    rng = np.random.default_rng(4)
    replies = []
    for i, msg in enumerate(msgs):
        y = np.full(60, 3) if i == 0 else rng.integers(0, C, 60)
        stats = ClassStats.of(centres[y] + rng.normal(0, 1, (60, 5)), y, C)
        replies.append(_statistics_reply(msg, stats, 60, f"drone-{i}"))
    before = (s.knowledge.current.argmax(1) == ref_y).mean()
    s.aggregate_train(1, replies)
    after = s.knowledge.current.argmax(1)
    assert (after[ref_y == 3] == 3).all()  # the teacher's blind class is now known
    assert (after == ref_y).mean() > before
    assert set(s.statistics.clients) == {"drone-0", "drone-1"}  # type: ignore[union-attr]
    assert s.current is not None and s.current.clients_ok == 2
    # the soft state is untouched: only the overlay carries the statistics
    assert (s.knowledge.targets.argmax(1) != 3).all()


def test_bad_statistics_are_rejected_and_missing_ones_accepted() -> None:
    s, _, _ = _statistics_strategy()
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1, 2])))
    plain = _reply(msgs[0], np.zeros((0, C), np.float32), 5)
    bad = _reply(msgs[1], np.zeros((0, C), np.float32), 5)
    bad.content[keys.CLASS_STATISTICS] = ArrayRecord(
        {
            "counts": Array(np.full(C, np.nan, np.float32)),
            "sums": Array(np.zeros((C, 5), np.float32)),
            "scatter": Array(np.zeros(15, np.float32)),
        }
    )
    s.aggregate_train(1, [plain, bad])
    assert s.current is not None
    assert s.current.rejections == {"statistics": 1}
    assert s.current.clients_ok == 1  # statistics are sent once: a reply may lack them
    assert s.knowledge.overlay is None


def test_statistics_mode_sends_each_node_only_its_architectures_head() -> None:
    from server.heads import DeployedHeads

    s, _, _ = _statistics_strategy()
    heads = DeployedHeads({})
    heads.current = {
        "tiny": (np.zeros((C, 5), np.float32), np.zeros(C, np.float32)),
        "small": (np.ones((C, 7), np.float32), np.ones(C, np.float32)),
    }
    s.heads = heads
    s.use_directory({}, {1: "tiny", 2: "small"})  # node 3: unknown, gets every head
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1, 2, 3])))
    sent = {m.metadata.dst_node_id: set(m.content[keys.HEADS]) for m in msgs}
    assert sent == {
        1: {"tiny.weight", "tiny.bias"},
        2: {"small.weight", "small.bias"},
        3: {"tiny.weight", "tiny.bias", "small.weight", "small.bias"},
    }
    assert msgs[0].content[keys.HEADS]["tiny.weight"].numpy().dtype == np.float16
    targets = msgs[0].content[keys.TARGETS].count_bytes()
    tiny, small = heads.record(["tiny"]).count_bytes(), heads.record(["small"]).count_bytes()
    assert s.current is not None
    assert s.current.bytes_down == 3 * targets + tiny + small + heads.record().count_bytes()


def test_heads_are_refit_only_in_rounds_that_bring_new_statistics() -> None:
    from common.class_stats import ClassStats
    from server.heads import DeployedHeads

    class CountingHeads(DeployedHeads):
        fits = 0

        def fit(self, targets: np.ndarray | None) -> None:
            # record() fits the pre-installed heads (no targets) until a fit set any
            CountingHeads.fits += targets is not None

    s, centres, _ = _statistics_strategy()
    s.heads = CountingHeads({}, kd_weight=1.0)
    rng = np.random.default_rng(5)
    for server_round, with_stats in ((1, True), (2, False), (3, True)):
        msgs = list(
            s.configure_train(server_round, s.knowledge_record(), ConfigRecord(), LoopbackGrid([1]))
        )
        y = rng.integers(0, C, 40)
        stats = ClassStats.of(centres[y] + rng.normal(0, 1, (40, 5)), y, C) if with_stats else None
        reply = _statistics_reply(msgs[0], stats, 40, "drone-0")
        arrays, _ = s.aggregate_train(server_round, [reply])
        assert arrays is not None and s.updated  # the round still counts as delivered
    assert CountingHeads.fits == 2  # rounds 1 and 3; round 2 brought nothing new


def test_fedkd_defaults_are_the_run_configs() -> None:
    """One source of truth: FedKD's constructor defaults are RunConfig's defaults."""
    import inspect

    from common.config import RunConfig
    from server.build import strategy_options

    params = inspect.signature(FedKD.__init__).parameters
    defaults = {name: p.default for name, p in params.items() if p.default is not p.empty}
    assert defaults == {
        **strategy_options(RunConfig()),
        "wait_for_nodes_seconds": 300.0,  # not a run-config setting
        "statistics": None,
        "heads": None,
    }
    # and a strategy built without arguments behaves so: 300 tiles asked, not 1000
    teacher = np.full((2000, C), 1 / C, np.float32)
    s = FedKD(Knowledge(teacher, teacher_mix=0.5))
    assert (s.reference_per_round, s.fraction_train, s.seed) == (300, 0.25, 42)


def test_finished_round_hands_over_the_round_with_its_run_round_number() -> None:
    s = _strategy()
    grid = LoopbackGrid([1, 2])
    assert s.finished_round(0) is None and s.finished_round(1) is None  # nothing yet
    s.restore(4, s.sampler_state)  # resumed after 4 rounds: Flower's round 1 is round 5
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), grid))
    s.aggregate_train(1, [Message(Error(code=1, reason="gone"), reply_to=m) for m in msgs])
    trained = s.finished_round(1)
    assert trained is not None and trained.round == 5 and trained.record is s.current
    assert trained.record.round == 5 and trained.started == s.round_started
    # without a schedule the server trains after every round, even one with no valid reply
    assert not s.updated and trained.server_update
    assert s.finished_round(0) is None  # Flower's initial evaluation


def _always_schedule() -> Schedule[ClientReply]:
    from common.fleet.schedule import ALWAYS, ContactAwareSchedule, ContactPlan

    return ContactAwareSchedule(
        ContactPlan([list(ALWAYS), list(ALWAYS)]),
        window_hours=1.0,
        max_clients=2,
        max_staleness=2,
        decay=0.5,
        train_hours=0.25,
    )


def test_contact_fedkd_trains_the_server_only_after_knowledge_arrived() -> None:
    s = _contact_strategy(_always_schedule())
    s.use_directory({7: 0, 8: 1}, {})
    grid = LoopbackGrid([7, 8])
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), grid))
    assert sorted(m.metadata.dst_node_id for m in msgs) == [7, 8]  # the planned clients
    s.aggregate_train(1, [Message(Error(code=1, reason="gone"), reply_to=m) for m in msgs])
    trained = s.finished_round(1)
    assert trained is not None and not trained.server_update
    assert trained.record.simulated_hours == 1.0
    msgs = list(s.configure_train(2, s.knowledge_record(), ConfigRecord(), grid))
    s.aggregate_train(2, [_reply(m, np.full((10, C), 1 / C, np.float32), 3) for m in msgs])
    trained = s.finished_round(2)
    assert trained is not None and trained.server_update and trained.record.clients_ok == 2


def test_contact_fedkd_needs_the_node_directory() -> None:
    s = _contact_strategy(_always_schedule())
    with pytest.raises(RuntimeError, match="discover first"):
        s.configure_train(1, s.knowledge_record(), ConfigRecord(), LoopbackGrid([7, 8]))


def test_contact_fedkd_overrides_only_the_hooks_the_schedule_changes() -> None:
    """Flower's pattern (FedProx over FedAvg): the subclass changes hooks, not the round."""
    overridden = {
        name for name, value in vars(ContactFedKD).items() if callable(value) and name in dir(FedKD)
    }
    assert overridden == {"__init__", "_select", "_issue", "_group", "_server_update_due"}


def test_every_strategy_class_documents_its_parameters() -> None:
    import inspect

    from server.fedavg import Counting, CountingFedAdam, CountingFedAvg, CountingFedProx

    for cls in (FedKD, ContactFedKD, Counting, CountingFedAvg, CountingFedProx, CountingFedAdam):
        assert "Parameters\n    ----------\n" in (cls.__doc__ or ""), cls.__name__
    for cls in (FedKD, ContactFedKD):
        names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        documented = (cls.__doc__ or "").replace(",", " ").split()
        missing = [n for n in names if n not in documented and f"**{n}" not in documented]
        assert not missing, f"{cls.__name__} does not document {missing}"


def test_a_round_times_sending_the_clients_the_receipt_and_the_aggregation() -> None:
    import time

    s = _strategy(evaluate_every=1, num_rounds=2)
    grid = LoopbackGrid([1, 2])
    msgs = list(s.configure_train(1, s.knowledge_record(), ConfigRecord(), grid))
    time.sleep(0.2)  # the clients work ...
    replies = []
    for msg, own in zip(msgs, (0.05, 0.15), strict=True):
        reply = _reply(msg, np.full((10, C), 1 / C, np.float32), 4)
        reply.content[keys.METRICS][keys.CLIENT_SECONDS] = own
        replies.append(reply)
    time.sleep(0.1)  # ... and their replies wait to be pulled
    s.aggregate_train(1, replies)
    assert s.current is not None
    phases = s.current.phase_seconds
    assert list(phases) == [
        keys.PHASE_SEND,
        keys.PHASE_CLIENTS,
        keys.PHASE_RECEIVE,
        keys.PHASE_AGGREGATE,
    ]
    assert 0.0 < phases[keys.PHASE_SEND] < 0.2
    assert 0.2 <= phases[keys.PHASE_CLIENTS] < 0.4
    assert 0.1 <= phases[keys.PHASE_RECEIVE] < 0.3
    assert phases[keys.PHASE_AGGREGATE] > 0.0
    assert s.current.client_seconds_max == pytest.approx(0.15)
    assert s.current.client_seconds == pytest.approx(0.2)

    evaluation = list(s.configure_evaluate(1, s.knowledge_record(), ConfigRecord(), grid))
    time.sleep(0.05)
    s.aggregate_evaluate(1, [Message(Error(code=1, reason="gone"), reply_to=evaluation[0])])
    assert phases[keys.PHASE_CLIENT_EVALUATE] >= 0.05
    s.configure_train(2, s.knowledge_record(), ConfigRecord(), grid)
    s.aggregate_train(2, [])
    s2 = _strategy(evaluate_every=0)  # no evaluation due: no client-evaluate phase
    assert list(s2.configure_evaluate(1, s2.knowledge_record(), ConfigRecord(), grid)) == []
    s2.configure_train(1, s2.knowledge_record(), ConfigRecord(), grid)
    s2.aggregate_evaluate(1, [])
    assert s2.current is not None
    assert keys.PHASE_CLIENT_EVALUATE not in s2.current.phase_seconds


def test_a_refit_towards_the_targets_of_the_last_fit_recomputes_nothing() -> None:
    """Heads fit deterministically from the pre-installed ones: the same targets again (new
    statistics that moved no class) keep the heads; other targets refit them."""
    from common.class_stats import GroundFeatures
    from common.models import build_model
    from server.heads import ArchHead, DeployedHeads

    rng = np.random.default_rng(3)
    model = build_model("tiny", 3, C, seed=0)
    width = model.head.in_features
    feats = GroundFeatures(
        archive=rng.normal(size=(2, 30, width)),
        labels=rng.integers(0, C, 30),
        reference=rng.normal(size=(12, width)),
    )
    calls: list[int] = []

    class CountingHead(ArchHead):
        def fit(self, targets: np.ndarray | None, **kw: float) -> tuple[np.ndarray, np.ndarray]:
            calls.append(1)
            return super().fit(targets, **kw)  # type: ignore[arg-type]

    heads = DeployedHeads({"tiny": CountingHead(model, feats)}, epochs=5, kd_weight=1.0)
    targets = rng.dirichlet(np.ones(C), 12).astype(np.float32)
    heads.fit(targets)
    first = heads.current["tiny"]
    heads.fit(targets.copy())  # equal bytes: the heads already fit them
    assert len(calls) == 1 and heads.current["tiny"] is first
    other = targets[::-1].copy()
    heads.fit(other)
    assert len(calls) == 2
    assert not np.array_equal(heads.current["tiny"][0], first[0])
    heads.fit(targets)  # back to the first targets: refit, to the same heads as then
    assert len(calls) == 3
    assert np.array_equal(heads.current["tiny"][0], first[0])
