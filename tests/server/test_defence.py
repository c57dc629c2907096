"""The strategy's side of trust: replies scored each round, weighed under ``history``."""

from __future__ import annotations

import numpy as np

from common.class_stats import ClassStats
from server.aggregation import Rule
from server.defence import Defence, client_key
from server.replies import ClientReply
from server.statistics_rules import RuledStatistics
from server.trust import TrustLedger

C = 4


def _reply(name: str, probs: np.ndarray, stats: ClassStats | None = None) -> ClientReply:
    return ClientReply(
        node_id=abs(hash(name)) % 1000,
        role="drone",
        probs=np.asarray(probs, np.float32),
        num_examples=10,
        local_accuracy=0.5,
        train_loss=0.1,
        bytes_up=0,
        statistics=stats,
        client_name=name,
    )


def _honest(rng: np.random.Generator, truth: np.ndarray) -> np.ndarray:
    p = np.eye(C)[truth] * 0.7 + rng.dirichlet(np.ones(C), len(truth)) * 0.3
    return p / p.sum(1, keepdims=True)


def test_a_reply_is_known_by_its_name_else_its_node() -> None:
    assert client_key(_reply("drone-3", np.zeros((0, C)))) == "drone-3"
    nameless = _reply("", np.zeros((0, C)))
    assert client_key(nameless) == f"node-{nameless.node_id}"


def test_history_leaves_out_the_liars_and_the_mean_keeps_everyone() -> None:
    rng = np.random.default_rng(0)
    indices = np.arange(20)
    truth = rng.integers(0, C, 20)
    history = Defence(Rule.HISTORY, Rule.MEAN, TrustLedger(0.5, 0.4))
    plain = Defence(Rule.MEAN, Rule.MEAN, TrustLedger(0.5, 0.4))
    for server_round in (1, 2):
        replies = [_reply(f"h{k}", _honest(rng, truth)) for k in range(6)]
        liar = np.eye(C)[(truth + 2) % C]  # all mass on a wrong class
        replies += [_reply("liar", liar)]
        groups = {server_round: (replies, [1.0] * len(replies))}
        kept = history.weigh(server_round, groups, {server_round: indices})
        assert plain.weigh(server_round, groups, {server_round: indices}) is groups
    assert history.ledger.flagged == ["liar"] == plain.ledger.flagged  # both keep trust
    names = [client_key(r) for r in kept[2][0]]
    assert "liar" not in names and len(names) == 6
    assert all(0 < f <= 1 for f in kept[2][1])
    assert history.applied is Rule.MEAN and plain.applied is Rule.MEAN
    assert history.summary()["flagged"] == ["liar"]


def test_a_sleeper_is_flagged_the_round_it_turns() -> None:
    rng = np.random.default_rng(1)
    indices = np.arange(30)
    truth = rng.integers(0, C, 30)
    d = Defence(Rule.HISTORY, Rule.TRIMMED_MEAN, TrustLedger(0.5, 0.4))
    for server_round in range(1, 6):
        turned = server_round >= 4
        honest = _honest(rng, truth)
        sleeper = np.eye(C)[honest.argmin(1)] if turned else _honest(rng, truth)
        replies = [_reply(f"h{k}", _honest(rng, truth)) for k in range(5)]
        replies.append(_reply("sleeper", sleeper))
        d.weigh(server_round, {server_round: (replies, [1.0] * 6)}, {server_round: indices})
        assert ("sleeper" in d.ledger.flagged) == turned, server_round
    assert d.applied is Rule.TRIMMED_MEAN


def _stats(labels: np.ndarray, true: np.ndarray, centres: np.ndarray) -> ClassStats:
    rng = np.random.default_rng(int(labels.sum()) + len(labels))
    return ClassStats.of(
        centres[true] + rng.normal(0, 0.5, (len(true), centres.shape[1])), labels, C
    )


def test_statistics_mode_flags_a_sleeper_that_resends_other_statistics() -> None:
    centres = np.random.default_rng(2).normal(0, 3, (C, 5))
    archive_y = np.repeat(np.arange(C), 20)
    archive = _stats(archive_y, archive_y, centres)
    pool = RuledStatistics(archive, np.zeros((3, 5)), views=1, temperature=0.5)
    d = Defence(Rule.HISTORY, Rule.MEAN, TrustLedger(0.5, 0.4))
    own = np.full(30, 1)
    honest = [
        _reply(f"h{k}", np.zeros((0, C)), _stats(np.full(30, k % C), np.full(30, k % C), centres))
        for k in range(6)
    ]
    first = _reply("sleeper", np.zeros((0, C)), _stats(own, own, centres))
    assert d.pool(1, [*honest, first], pool)
    assert d.ledger.flagged == [] and pool.weights is not None and pool.weights["sleeper"] > 0
    # honest clients answer again without statistics: scored, nothing new pooled
    assert not d.pool(2, [_reply(f"h{k}", np.zeros((0, C))) for k in range(6)], pool)
    lie = _reply("sleeper", np.zeros((0, C)), _stats(np.full(30, 3), own, centres))
    assert d.pool(3, [lie], pool)
    assert d.ledger.flagged == ["sleeper"] and pool.weights["sleeper"] == 0.0
    # a resumed run gets the weights back from the trust alone
    again = Defence(Rule.HISTORY, Rule.MEAN, TrustLedger(0.5, 0.4))
    again.restore(d.ledger.state())
    pool.weights = None
    again.reweigh(pool)
    assert pool.weights is not None and pool.weights["sleeper"] == 0.0
