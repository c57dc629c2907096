"""Federated distillation on Flower's Message API.

Each round the sampled clients receive the current soft targets K_t for a sample of reference
indices; they reply with their students' soft predictions on exactly those indices. Replies are
validated, aggregated, and mixed with the teacher into K_t+1. Failures are counted, not raised.
The contact-aware variant (fleet scenarios) is :class:`server.contact_fedkd.ContactFedKD`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from common import keys
from common.codec import Codec
from common.config import RunConfig
from server import instructions
from server.aggregation import Groups, Rule, aggregate_groups
from server.defence import Defence
from server.evidence import StatisticsKnowledge
from server.heads import DeployedHeads
from server.history import RoundRecord, TrainedRound
from server.knowledge import Knowledge
from server.replies import ClientReply, client_test_accuracy, collect_replies, content_bytes
from server.sampling import sample_nodes, wait_for_nodes
from server.timings import Sent, mark_sent, receiving
from server.trust import TrustLedger

log = logging.getLogger(__name__)

KNOWLEDGE = "knowledge"
_DEFAULT = RunConfig()  # every default below is the run config's own
_DEFAULT_CODEC, _DEFAULT_RULE = _DEFAULT.codec_mode, Rule.parse(_DEFAULT.aggregation)
_DEFAULT_BASE = Rule.parse(_DEFAULT.history_base)


class FedKD(Strategy):
    """Federated knowledge distillation: exchange soft predictions on a public reference set.

    Every default is :class:`common.config.RunConfig`'s (the run config's key in brackets).

    Parameters
    ----------
    knowledge : Knowledge
        K_t on every reference tile, mixed with the teacher; updated in place each round.
    codec, topk : Codec, int (``codec``, int8; ``topk``, 3)
        How soft labels travel, down and up; the classes a row keeps with the top-k codec.
    rule, trim : Rule, float (``aggregation``, mean; ``trim``, 0.2)
        How the clients' predictions on one tile are combined; the share the trimmed mean
        cuts from each end.
    fraction_train : float (``fraction-train``, 0.25)
        The share of the connected nodes sampled each round.
    min_train_nodes, min_available_nodes : int (``min-train-clients``, 2)
        The fewest nodes sampled in a round; the nodes a round waits for before sampling.
    wait_for_nodes_seconds : float (300)
        How long a round waits for ``min_available_nodes`` (then it samples who is there).
    reference_per_round : int (``reference-per-round``, 300)
        Reference tiles asked each round (at most the reference set).
    seed : int (``seed``, 42)
        Seeds the node sampling and each round's draw of reference tiles.
    evaluate_every, num_rounds : int, int (``evaluate-every``, 0; ``num-rounds``, 10)
        Clients score their students on the common test split every N rounds and after the
        run's last round (0: never).
    sample_by_client : bool (``sample-by`` = client, False)
        Sample the clients behind the nodes (:meth:`use_directory`), not node ids, so that
        two runs with one seed train the same clients.
    statistics, heads : StatisticsKnowledge, DeployedHeads, optional (``client-statistics``)
        Ask every client for class statistics instead of predictions, pool and fuse them;
        send down the heads the ground fits for each client architecture.
    history_base, trust_threshold, trust_memory : Rule, float, float (``history-base`` ...)
        Trust from history (server/trust.py): ``history``'s rule on the trusted replies, the
        trust under which a client is flagged, the weight of its past against a new agreement.
    """

    def __init__(
        self,
        knowledge: Knowledge,
        *,
        codec: Codec = _DEFAULT_CODEC,
        rule: Rule = _DEFAULT_RULE,
        trim: float = _DEFAULT.trim,
        topk: int = _DEFAULT.topk,
        fraction_train: float = _DEFAULT.fraction_train,
        min_train_nodes: int = _DEFAULT.min_train_clients,
        min_available_nodes: int = _DEFAULT.min_train_clients,
        reference_per_round: int = _DEFAULT.reference_per_round,
        seed: int = _DEFAULT.seed,
        wait_for_nodes_seconds: float = 300.0,
        evaluate_every: int = _DEFAULT.evaluate_every,
        num_rounds: int = _DEFAULT.num_rounds,
        sample_by_client: bool = _DEFAULT.sample_by == "client",
        statistics: StatisticsKnowledge | None = None,
        heads: DeployedHeads | None = None,
        history_base: Rule = _DEFAULT_BASE,
        trust_threshold: float = _DEFAULT.trust_threshold,
        trust_memory: float = _DEFAULT.trust_memory,
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
        self.round_offset = 0  # rounds done before a resumption: Flower counts from 1 again
        self._indices = np.empty(0, dtype=np.int64)
        self.current: RoundRecord | None = None
        self.round_started = 0.0  # time.perf_counter() when configure_train began
        self._sent = Sent(0.0, 0.0)  # when its messages went to Flower
        self._evaluate_started: float | None = None  # ... and configure_evaluate's
        # node id -> scenario client (partition id) and -> student architecture, when known
        self.node_clients: dict[int, int] = {}
        self.node_archs: dict[int, str] = {}
        self.sample_by_client = sample_by_client  # needs node_clients (see use_directory)
        self._issued: dict[int, np.ndarray] = {}  # round -> reference indices sent then
        self.updated = False  # did the last round change the knowledge?
        self.statistics = statistics
        self.heads = heads
        # trust from history (server/trust.py), kept whatever the rule; acted on by ``history``
        self.defence = Defence(rule, history_base, TrustLedger(trust_threshold, trust_memory))

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

    def use_directory(self, clients: dict[int, int], archs: dict[int, str]) -> None:
        """Who the nodes are (server/fleet.py ``discover_clients``): node id -> scenario
        client (partition id), and node id -> the student architecture it trains."""
        self.node_clients = clients
        self.node_archs = archs

    def knowledge_record(self) -> ArrayRecord:
        return ArrayRecord({KNOWLEDGE: Array(self.knowledge.current)})

    def finished_round(self, server_round: int) -> TrainedRound | None:
        """What Flower's round ``server_round`` left for the server's work after it (None
        before the first round); call it once the round's client phase is over."""
        if server_round == 0 or self.current is None:
            return None
        update = self._server_update_due()
        return TrainedRound(
            server_round + self.round_offset, self.current, self.round_started, update
        )

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

    # The hooks a variant (server/contact_fedkd.py) overrides.

    def _select(self, server_round: int, grid: Grid) -> tuple[list[int], float | None]:
        """The nodes that train in ``server_round``, and the simulated hours at its end
        (None: no simulated clock); here a seeded sample of the connected nodes."""
        nodes = wait_for_nodes(grid, self.min_available_nodes, self.wait_for_nodes_seconds)
        size = min(len(nodes), max(self.min_train_nodes, int(len(nodes) * self.fraction_train)))
        by_client = self.node_clients if self.sample_by_client else None
        return sample_nodes(self._rng, nodes, size, by_client), None

    def _issue(self, server_round: int, indices: np.ndarray) -> None:
        """Remember the reference indices sent in ``server_round``: here only the latest,
        since every reply answers the round that asked it."""
        self._issued = {server_round: indices}

    def _group(
        self, server_round: int, record: RoundRecord, valid: list[ClientReply], senders: list[int]
    ) -> Groups:
        """The round's valid replies by the round that issued their indices, with weight
        factors: here every reply answers this round, at weight 1."""
        return {server_round: (valid, [1.0] * len(valid))}

    def _server_update_due(self) -> bool:
        """Do the server's models train after this round? Here every round (on unchanged
        knowledge too, when no reply was valid)."""
        return True

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        self.round_started = time.perf_counter()
        node_ids, simulated_hours = self._select(server_round, grid)
        rng = np.random.default_rng([self.seed, server_round])
        n_ref = self.knowledge.shape[0]
        per_round = self.reference_per_round if self.asks_predictions else 0
        self._indices = np.sort(rng.choice(n_ref, size=per_round, replace=False))
        self._issue(server_round, self._indices)
        targets = self.knowledge.current[self._indices]
        record = instructions.targets_record(targets, self._indices, n_ref, self.codec, self.topk)
        stats = self.statistics is not None  # ask for class statistics
        cfg = instructions.train_config(config, server_round, self.codec, self.topk, stats)
        messages = instructions.train_messages(node_ids, record, cfg, self.node_archs, self.heads)
        self.current = RoundRecord(
            round=server_round,
            clients_selected=len(node_ids),
            bytes_down=sum(content_bytes(m.content) for m in messages),
            simulated_hours=simulated_hours,
        )
        log.info("round %d: %d clients selected", server_round, len(node_ids))
        self._sent = mark_sent(self.current.phase_seconds, self.round_started)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate and aggregate the round's replies (:meth:`_aggregate`), timed: the wait
        for them split into the clients' work and the receipt, then the aggregation."""
        replies = list(replies)
        record = self.current or RoundRecord(round=server_round + self.round_offset)
        self.current = record
        with receiving(record.phase_seconds, self._sent, replies):
            return self._aggregate(server_round + self.round_offset, record, replies)

    def _aggregate(
        self, server_round: int, record: RoundRecord, replies: list[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        shape = (len(self._indices), self.knowledge.shape[1])
        dim = self.statistics.archive.dim if self.statistics is not None else 0
        valid, senders = collect_replies(replies, shape, self.codec, dim, record)
        record.client_seconds_max = max((r.client_seconds for r in valid), default=0.0)
        self.updated = False
        if not self.asks_predictions:  # statistics mode: the replies carry no predictions
            return self._statistics_round(record, valid)
        groups = self._group(server_round, record, valid, senders)
        groups = {r: g for r, g in groups.items() if g[0]}
        groups = self.defence.weigh(record.round, groups, self._issued)  # trust: server/defence.py
        record.trust = self.defence.summary()
        if not groups:
            log.warning("round %d: no valid replies, knowledge unchanged", server_round)
            return None, None
        indices, agg = aggregate_groups(
            self.defence.applied, groups, self._issued, trim=self.trim, server_round=server_round
        )
        self.knowledge.update(indices, agg, server_round)
        return self._knowledge_arrived(record, [r for g in groups.values() for r in g[0]])

    def _knowledge_arrived(
        self, record: RoundRecord, used: list[ClientReply]
    ) -> tuple[ArrayRecord, MetricRecord]:
        """The round changed the knowledge: what ``aggregate_train`` returns for it."""
        self.updated = True
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
        """Keep each client's newest class statistics; fuse them into the knowledge (and refit
        the heads) only when some arrived: nothing else moves the knowledge in this mode."""
        if not valid:
            log.warning("round %d: no valid replies, knowledge unchanged", record.round)
            return None, None
        assert self.statistics is not None
        changed = self.defence.pool(record.round, valid, self.statistics)  # trust, pooling
        record.trust = self.defence.summary()
        if changed:
            self.fuse_statistics()
        return self._knowledge_arrived(record, valid)

    def fuse_statistics(self) -> None:
        """Recompute the fused knowledge from the soft targets and the pooled statistics."""
        if self.statistics is not None and self.statistics.clients:
            self.knowledge.set_overlay(self.statistics.fuse(self.knowledge.targets))
        if self.heads is not None and self.heads.kd_weight > 0:
            self.heads.fit(self.knowledge.current)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Every ``evaluate_every`` rounds (and after the last), every connected client scores
        the student it would deploy on the common test split; otherwise nothing is sent."""
        server_round += self.round_offset
        if not instructions.evaluation_due(server_round, self.evaluate_every, self.num_rounds):
            return []
        self._evaluate_started = time.perf_counter()
        return instructions.evaluate_messages(sorted(grid.get_node_ids()), config, server_round)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Mean test accuracy of the clients' students, overall and per role."""
        summary = client_test_accuracy(replies)
        if self._evaluate_started is not None and self.current is not None:
            seconds = time.perf_counter() - self._evaluate_started
            self.current.phase_seconds[keys.PHASE_CLIENT_EVALUATE] = seconds
        self._evaluate_started = None
        if summary is None or self.current is None:
            return None
        self.current.client_test_accuracy, self.current.client_test_accuracy_mean = summary
        return MetricRecord({"client-test-accuracy": summary[1]})
