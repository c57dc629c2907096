"""Federated distillation on Flower's Message API.

Each round the sampled clients receive the current soft targets K_t for a sample of reference
indices; they reply with their students' soft predictions on exactly those indices. Replies are
validated, aggregated, and mixed with the teacher into K_t+1. Failures are counted, not raised.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from common import keys
from common.codec import Codec, encode
from common.errors import ReplyError
from common.fleet.schedule import RoundPlan, Schedule
from server.aggregation import Rule, aggregate, merge_groups
from server.evidence import StatisticsKnowledge
from server.heads import DeployedHeads
from server.history import RoundRecord
from server.knowledge import Knowledge
from server.replies import ClientReply, parse_reply

log = logging.getLogger(__name__)

KNOWLEDGE = "knowledge"
MAX_STALENESS = 100  # rounds of reference indices kept for replies that arrive late


def _content_bytes(content: RecordDict) -> int:
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


class FedKD(Strategy):
    """Federated knowledge distillation: exchange soft predictions on a public reference set."""

    def __init__(
        self,
        knowledge: Knowledge,
        *,
        codec: Codec = Codec.INT8,
        rule: Rule = Rule.MEAN,
        trim: float = 0.2,
        topk: int = 3,
        fraction_train: float = 0.5,
        min_train_nodes: int = 2,
        min_available_nodes: int = 2,
        reference_per_round: int = 1000,
        seed: int = 0,
        wait_for_nodes_seconds: float = 300.0,
        evaluate_every: int = 0,
        num_rounds: int = 0,
        schedule: Schedule[ClientReply] | None = None,
        sample_by_client: bool = False,
        statistics: StatisticsKnowledge | None = None,
        heads: DeployedHeads | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.codec = codec
        self.rule = rule
        self.trim = trim
        self.topk = topk
        self.fraction_train = fraction_train
        self.min_train_nodes = min_train_nodes
        self.min_available_nodes = min_available_nodes
        self.reference_per_round = min(reference_per_round, knowledge.shape[0])
        self.seed = seed
        self.wait_for_nodes_seconds = wait_for_nodes_seconds
        self.evaluate_every = evaluate_every
        self.num_rounds = num_rounds
        self._rng = random.Random(seed)
        # Rounds completed before a resumption: Flower's loop counts from 1 again.
        self.round_offset = 0
        self._indices = np.empty(0, dtype=np.int64)
        self.current: RoundRecord | None = None
        self.round_started = 0.0
        # Fleet scenarios: who may talk when (None: every sampled node, every round). Nodes
        # map to scenario clients through ``node_clients`` (node id -> partition id).
        self.schedule = schedule
        self.node_clients: dict[int, int] = {}
        self.sample_by_client = sample_by_client  # needs node_clients (see discover_clients)
        self._issued: dict[int, np.ndarray] = {}  # round -> reference indices sent then
        self.updated = False  # did the last round change the knowledge?
        # Class statistics (client-statistics = 1): asked of every client, pooled, fused in.
        self.statistics = statistics
        # The heads the ground fits for each client architecture (statistics mode), sent down:
        # to each node its own architecture's when ``node_archs`` (node id -> architecture,
        # from discover_clients) knows it, else every architecture's.
        self.heads = heads
        self.node_archs: dict[int, str] = {}

    @property
    def asks_predictions(self) -> bool:
        """Do clients answer on reference tiles? Not in statistics mode: a client's backbone
        stays the pre-installed one and its head is the ground's, so its predictions would be
        what the ground can compute itself; what the shard teaches travels as statistics."""
        return self.statistics is None

    @property
    def sampler_state(self) -> tuple[object, ...]:
        return self._rng.getstate()

    def restore(self, completed_rounds: int, sampler_state: tuple[object, ...]) -> None:
        """Continue after ``completed_rounds`` (from a checkpoint)."""
        self.round_offset = completed_rounds
        self._rng.setstate(sampler_state)

    def knowledge_record(self) -> ArrayRecord:
        return ArrayRecord({KNOWLEDGE: Array(self.knowledge.current)})

    def summary(self) -> None:
        log.info(
            "FedKD: codec %s, rule %s, fraction-train %.2f, %d reference tiles per round, "
            "teacher mix %.2f -> %.2f",
            self.codec,
            self.rule,
            self.fraction_train,
            self.reference_per_round,
            self.knowledge.mix_start,
            self.knowledge.teacher_mix,
        )

    def _sample_nodes(self, grid: Grid) -> list[int]:
        deadline = time.monotonic() + self.wait_for_nodes_seconds
        while len(nodes := sorted(grid.get_node_ids())) < self.min_available_nodes:
            if time.monotonic() > deadline:
                log.warning("only %d nodes connected after waiting: continuing", len(nodes))
                break
            log.info("waiting for nodes: %d of %d connected", len(nodes), self.min_available_nodes)
            time.sleep(1.0)
        size = min(len(nodes), max(self.min_train_nodes, int(len(nodes) * self.fraction_train)))
        if self.sample_by_client and self.node_clients:
            # Sample clients (partition ids), not node ids: Flower draws new node ids each
            # run, so only this makes two runs with one seed train the same clients.
            live = set(nodes)
            pairs = sorted((c, n) for n, c in self.node_clients.items() if n in live)
            picked = self._rng.sample(pairs, min(size, len(pairs)))
            return sorted(n for _, n in picked)
        return sorted(self._rng.sample(nodes, size))

    def _plan(self, server_round: int) -> RoundPlan:
        assert self.schedule is not None
        if not self.node_clients:
            raise RuntimeError("FedKD has a schedule but no node -> client map: discover first")
        return self.schedule.plan_round(server_round)

    def _nodes_of(self, plan: RoundPlan) -> list[int]:
        """The Flower nodes of the plan's scenario clients (sorted)."""
        by_client = {c: n for n, c in self.node_clients.items()}
        missing = [c for c in plan.clients if c not in by_client]
        if missing:
            log.warning("round %d: scenario clients %s have no node", plan.round, missing)
        return sorted(by_client[c] for c in plan.clients if c in by_client)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        self.round_started = time.perf_counter()
        plan = self._plan(server_round) if self.schedule is not None else None
        node_ids = self._sample_nodes(grid) if plan is None else self._nodes_of(plan)
        rng = np.random.default_rng([self.seed, server_round])
        n_ref = self.knowledge.shape[0]
        per_round = self.reference_per_round if self.asks_predictions else 0
        self._indices = np.sort(rng.choice(n_ref, size=per_round, replace=False))
        if self.schedule is None:
            self._issued.clear()
        self._issued[server_round] = self._indices
        payload = encode(self.knowledge.current[self._indices], self.codec, k=self.topk)
        record = ArrayRecord({name: Array(a) for name, a in payload.items()})
        # Indices travel in the narrowest unsigned type that holds them (2 bytes up to 65,536
        # reference tiles): at 500 tiles a round, int64 would be a fifth of the download.
        index_type = np.uint16 if n_ref <= np.iinfo(np.uint16).max + 1 else np.int64
        record[keys.INDICES] = Array(self._indices.astype(index_type))
        cfg = ConfigRecord(dict(config))
        cfg[keys.SERVER_ROUND] = server_round
        cfg[keys.CODEC] = self.codec.value
        cfg[keys.TOPK] = self.topk
        if self.statistics is not None:
            cfg[keys.SEND_STATISTICS] = 1
        contents = {
            arch: RecordDict({keys.TARGETS: record, keys.TRAIN_CONFIG: cfg})
            for arch in {self.node_archs.get(n) for n in node_ids}
        }
        if self.heads is not None:
            for arch, content in contents.items():
                content[keys.HEADS] = self.heads.record(None if arch is None else [arch])
        messages = [
            Message(
                content=contents[self.node_archs.get(node)],
                dst_node_id=node,
                message_type=MessageType.TRAIN,
            )
            for node in node_ids
        ]
        self.current = RoundRecord(
            round=server_round,
            clients_selected=len(node_ids),
            bytes_down=sum(_content_bytes(m.content) for m in messages),
            simulated_hours=None if plan is None else plan.end,
        )
        log.info("round %d: %d clients selected", server_round, len(node_ids))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        server_round += self.round_offset
        record = self.current or RoundRecord(round=server_round)
        shape = (len(self._indices), self.knowledge.shape[1])
        dim = self.statistics.archive.dim if self.statistics is not None else 0
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
                valid.append(parse_reply(msg, shape, self.codec, dim))
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
        self.current = record
        self.updated = False
        if not self.asks_predictions:  # statistics mode: the replies carry no predictions
            return self._statistics_round(record, valid)
        groups = {server_round: (valid, [1.0] * len(valid))}
        if self.schedule is not None:
            groups = self._settle(server_round, record, dict(zip(senders, valid, strict=True)))
        groups = {r: g for r, g in groups.items() if g[0]}
        if not groups:
            log.warning("round %d: no valid replies, knowledge unchanged", server_round)
            return None, None
        aggs = {r: self._aggregate(server_round, *g) for r, g in groups.items()}
        if len(aggs) == 1:
            ((issued, agg),) = aggs.items()
            self.knowledge.update(self._issued[issued], agg, server_round)
        else:
            indices, agg = merge_groups(
                [(self._issued[r], agg, sum(groups[r][1])) for r, agg in aggs.items()]
            )
            self.knowledge.update(indices, agg, server_round)
        return self._knowledge_arrived(record, [r for g in groups.values() for r in g[0]])

    def _knowledge_arrived(
        self, record: RoundRecord, used: list[ClientReply]
    ) -> tuple[ArrayRecord, MetricRecord]:
        """The round changed the knowledge: what ``aggregate_train`` returns for it."""
        self.updated = True  # (in a fleet, the global student trains on it)
        record.teacher_agreement = self.knowledge.teacher_agreement()
        metrics = MetricRecord(
            {
                "clients-ok": record.clients_ok,
                "num-examples": sum(r.num_examples for r in used),
                "teacher-agreement": record.teacher_agreement,
            }
        )
        return self.knowledge_record(), metrics

    def _statistics_round(
        self, record: RoundRecord, valid: list[ClientReply]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Pool the round's new class statistics into the knowledge (nothing else arrives)."""
        if not valid:
            log.warning("round %d: no valid replies, knowledge unchanged", record.round)
            return None, None
        self._pool_statistics(valid)
        return self._knowledge_arrived(record, valid)

    def _pool_statistics(self, valid: list[ClientReply]) -> None:
        """Keep each client's newest class statistics; fuse them into the knowledge (and refit
        the heads) only when some arrived: nothing else moves the knowledge in this mode."""
        assert self.statistics is not None
        arrived = [
            (r.client_name or f"node-{r.node_id}", r.statistics)
            for r in valid
            if r.statistics is not None
        ]
        for name, stats in arrived:
            self.statistics.add(name, stats)
        if arrived:
            self.fuse_statistics()

    def fuse_statistics(self) -> None:
        """Recompute the fused knowledge from the soft targets and the pooled statistics."""
        if self.statistics is not None and self.statistics.clients:
            self.knowledge.set_overlay(self.statistics.fuse(self.knowledge.targets))
        if self.heads is not None and self.heads.kd_weight > 0:
            self.heads.fit(self.knowledge.current)

    def _settle(
        self, server_round: int, record: RoundRecord, replies: dict[int, ClientReply]
    ) -> dict[int, tuple[list[ClientReply], list[float]]]:
        """This round's fresh replies and the held ones delivered now, grouped by the round
        that issued them, with their staleness weights."""
        assert self.schedule is not None
        by_client = {self.node_clients[n]: r for n, r in replies.items() if n in self.node_clients}
        settled = self.schedule.settle(server_round, by_client)
        record.replies_held = settled.held
        record.stale_accepted = len(settled.stale)
        record.stale_dropped = settled.dropped
        groups: dict[int, tuple[list[ClientReply], list[float]]] = {
            server_round: (settled.fresh, [1.0] * len(settled.fresh))
        }
        for reply, issued, _, weight in settled.stale:
            group = groups.setdefault(issued, ([], []))
            group[0].append(reply)
            group[1].append(weight)
        self._issued = {r: i for r, i in self._issued.items() if r > server_round - MAX_STALENESS}
        if settled.stale or settled.dropped or settled.held:
            log.info(
                "round %d: %d fresh, %d stale accepted, %d too old, %d held for later",
                server_round,
                len(settled.fresh),
                len(settled.stale),
                settled.dropped,
                settled.held,
            )
        return groups

    def _aggregate(
        self, server_round: int, valid: list[ClientReply], factors: list[float]
    ) -> np.ndarray:
        """Aggregate replies on one set of indices; weights = examples x staleness factor."""
        weights = [r.num_examples * f for r, f in zip(valid, factors, strict=True)]
        counts: list[Sequence[float] | None] = [r.class_counts for r in valid]
        if self.rule is Rule.CLASS_WEIGHTED and any(c is None for c in counts):
            log.warning("round %d: a reply lacks class counts, using the plain mean", server_round)
            return aggregate(Rule.MEAN, [r.probs for r in valid], weights)
        if self.rule is Rule.CLASS_WEIGHTED and any(f != 1.0 for f in factors):
            # class-weighted ignores example weights: scale the counts by the staleness factor
            counts = [[f * n for n in c] if c else c for c, f in zip(counts, factors, strict=True)]
        return aggregate(
            self.rule,
            [r.probs for r in valid],
            weights,
            trim=self.trim,
            class_counts=[c for c in counts if c is not None],
        )

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Every ``evaluate_every`` rounds (and after the last), every connected client scores
        the student it would deploy on the common test split; otherwise nothing is sent."""
        server_round += self.round_offset
        last = server_round == self.num_rounds
        if self.evaluate_every <= 0 or not (server_round % self.evaluate_every == 0 or last):
            return []
        cfg = ConfigRecord(dict(config))
        cfg[keys.SERVER_ROUND] = server_round
        content = RecordDict({keys.TRAIN_CONFIG: cfg})
        return [
            Message(content=content, dst_node_id=node, message_type=MessageType.EVALUATE)
            for node in sorted(grid.get_node_ids())
        ]

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Mean test accuracy of the clients' students, overall and per role."""
        server_round += self.round_offset
        by_role: dict[str, list[float]] = {}
        for msg in replies:
            if msg.has_error() or keys.METRICS not in msg.content:
                continue
            metrics, info = msg.content[keys.METRICS], msg.content.get(keys.INFO)
            acc = metrics.get(keys.TEST_ACCURACY) if isinstance(metrics, MetricRecord) else None
            role = info.get(keys.ROLE) if isinstance(info, ConfigRecord) else None
            if isinstance(acc, float) and 0.0 <= acc <= 1.0 and isinstance(role, str):
                by_role.setdefault(role, []).append(acc)
        if not by_role or self.current is None:
            return None
        every = [a for accs in by_role.values() for a in accs]
        self.current.client_test_accuracy = {
            r: float(np.mean(v)) for r, v in sorted(by_role.items())
        }
        self.current.client_test_accuracy_mean = float(np.mean(every))
        return MetricRecord({"client-test-accuracy": self.current.client_test_accuracy_mean})
