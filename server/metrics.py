"""Every Prometheus metric skydistill exports, on its own registry (one module, JupyterHub style).

Names follow Prometheus conventions: ``skydistill_`` prefix, base units, ``_total`` counters,
``_ratio`` for fractions. Label values are small enums (status, reason, direction, role), never
client ids or round numbers. Failure series exist from the start, before the first failure;
a measured value (an accuracy, a loss) has no series until it is first measured, so a dashboard
shows a gap before round 1 (or for the whole run: the refined teacher without refinement),
never a fake 0.0.
Client-side figures arrive as reply metrics and are turned into server metrics here; no client
process exports Prometheus itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Lock, Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from common.config import ROLES
from server.history import RoundRecord
from server.replies import REJECTION_REASONS

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)


class MeasuredGauge:
    """A gauge without labels that exports no sample until it is first set.

    ``prometheus_client``'s ``Gauge`` reads 0.0 from creation: for an accuracy that is a drop
    to zero on a dashboard before anything was measured."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self._value: float | None = None
        self._lock = Lock()
        registry.register(self)

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    @property
    def value(self) -> float | None:
        return self._value

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            value = self._value
        if value is None:
            return []
        return [GaugeMetricFamily(self.name, self.documentation, value=value)]


STATUSES = ("ok", "failed", "rejected")
DIRECTIONS = ("up", "down")

ROUND = Gauge("skydistill_round", "Last completed federated round.", registry=REGISTRY)
ROUNDS_COMPLETED = Counter(
    "skydistill_rounds_completed", "Federated rounds completed.", registry=REGISTRY
)
# The rounds the run plans (num-rounds), beside the last completed round: once the exporter
# is gone, the last scraped pair says whether the run ended or its server died mid-run
# (deploy/prometheus/rules.yml, SkydistillServerGone).
ROUNDS_PLANNED = Gauge(
    "skydistill_rounds_planned", "Federated rounds the run plans (num-rounds).", registry=REGISTRY
)
LAST_ROUND_TIMESTAMP = Gauge(
    "skydistill_last_round_timestamp_seconds",
    "Unix time at which the last round completed.",
    registry=REGISTRY,
)
ROUND_DURATION = Histogram(
    "skydistill_round_duration_seconds",
    "Wall-clock seconds per round (send, client work, aggregation, server distillation).",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600),
    registry=REGISTRY,
)
CLIENTS_SELECTED = Gauge(
    "skydistill_clients_selected", "Clients sent work in the last round.", registry=REGISTRY
)
CLIENT_REPLIES = Counter(
    "skydistill_client_replies",
    "Client replies by outcome: ok, failed (error or no answer), rejected (invalid).",
    ["status"],
    registry=REGISTRY,
)
REPLY_REJECTIONS = Counter(
    "skydistill_reply_rejections",
    "Rejected client replies by reason.",
    ["reason"],
    registry=REGISTRY,
)
PAYLOAD_BYTES = Counter(
    "skydistill_payload_bytes",
    "Bytes of soft labels on the wire, by direction (down: to clients, up: from clients).",
    ["direction"],
    registry=REGISTRY,
)
GLOBAL_ACCURACY = MeasuredGauge(
    "skydistill_global_accuracy_ratio",
    "Global student's accuracy on the server's test split after the last round.",
    registry=REGISTRY,
)
GLOBAL_ACCURACY_CHANGE = MeasuredGauge(
    "skydistill_global_accuracy_change_ratio",
    "Change of the global accuracy against the previous round (negative: a drop).",
    registry=REGISTRY,
)
CLIENT_ACCURACY = Gauge(
    "skydistill_client_accuracy_ratio",
    "Mean client-student accuracy on the clients' held-out splits, by role.",
    ["role"],
    registry=REGISTRY,
)
DISTILL_LOSS = MeasuredGauge(
    "skydistill_distill_loss",
    "Server-side distillation loss of the last round.",
    registry=REGISTRY,
)
TEACHER_AGREEMENT = MeasuredGauge(
    "skydistill_teacher_agreement_ratio",
    "Share of reference tiles whose aggregated-knowledge argmax equals the teacher's.",
    registry=REGISTRY,
)
TEACHER_ACCURACY = MeasuredGauge(
    "skydistill_teacher_accuracy_ratio",
    "Teacher's accuracy on the server's test split: as trained, from the run's start; the "
    "refined teacher's after each round with teacher-refine-epochs > 0.",
    registry=REGISTRY,
)
# Trust from history (server/trust.py): a summary only, never a client id as a label.
CLIENTS_DISTRUSTED = Gauge(
    "skydistill_clients_distrusted",
    "Clients whose trust is under trust-threshold after the last round (flagged: the history "
    "rule leaves them out).",
    registry=REGISTRY,
)
TRUST_MIN = MeasuredGauge(
    "skydistill_trust_min_ratio",
    "Lowest trust of any known client after the last round.",
    registry=REGISTRY,
)
TRUST_MEDIAN = MeasuredGauge(
    "skydistill_trust_median_ratio",
    "Median trust of the known clients after the last round.",
    registry=REGISTRY,
)
RUN_INFO = Info(
    "skydistill_run",
    "What is running: strategy, aggregation rule, codec, dataset.",
    registry=REGISTRY,
)

# Every metric, in the order of the README's table (metric_names() reads this, so that a
# measured gauge that has no sample yet is still known to dashboards and their tests).
METRICS = (
    ROUND,
    ROUNDS_COMPLETED,
    ROUNDS_PLANNED,
    LAST_ROUND_TIMESTAMP,
    ROUND_DURATION,
    CLIENTS_SELECTED,
    CLIENT_REPLIES,
    REPLY_REJECTIONS,
    PAYLOAD_BYTES,
    GLOBAL_ACCURACY,
    GLOBAL_ACCURACY_CHANGE,
    CLIENT_ACCURACY,
    DISTILL_LOSS,
    TEACHER_AGREEMENT,
    TEACHER_ACCURACY,
    CLIENTS_DISTRUSTED,
    TRUST_MIN,
    TRUST_MEDIAN,
    RUN_INFO,
)

for _status in STATUSES:
    CLIENT_REPLIES.labels(status=_status)
for _reason in REJECTION_REASONS:
    REPLY_REJECTIONS.labels(reason=_reason)
for _direction in DIRECTIONS:
    PAYLOAD_BYTES.labels(direction=_direction)


def metric_names() -> set[str]:
    """Base names of every exported metric (as a dashboard or alert refers to them), including
    measured gauges that have no sample yet."""
    names: set[str] = set()
    for collector in METRICS:
        for family in collector.describe():
            suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
            names.add(family.name + suffix)
    return names


def set_planned_rounds(rounds: int) -> None:
    """The run's planned rounds, exported before its exporter starts serving."""
    ROUNDS_PLANNED.set(rounds)


def set_run_info(
    strategy: str, rule: str, codec: str, dataset: str, *, teacher_accuracy: float | None = None
) -> None:
    """Label the run, start the no-round-completed clock and, for a distillation run, export
    the teacher's accuracy (known before round 1; refinement updates it per round)."""
    RUN_INFO.info({"strategy": strategy, "rule": rule, "codec": codec, "dataset": dataset})
    LAST_ROUND_TIMESTAMP.set_to_current_time()
    if teacher_accuracy is not None and math.isfinite(teacher_accuracy):
        TEACHER_ACCURACY.set(teacher_accuracy)


def observe_round(record: RoundRecord, previous_accuracy: float | None) -> None:
    """Turn one completed round's record into metric updates."""
    ROUND.set(record.round)
    ROUNDS_COMPLETED.inc()
    LAST_ROUND_TIMESTAMP.set(time.time())
    ROUND_DURATION.observe(record.seconds)
    CLIENTS_SELECTED.set(record.clients_selected)
    CLIENT_REPLIES.labels(status="ok").inc(record.clients_ok)
    CLIENT_REPLIES.labels(status="failed").inc(record.clients_failed)
    CLIENT_REPLIES.labels(status="rejected").inc(record.clients_rejected)
    for reason, count in record.rejections.items():
        REPLY_REJECTIONS.labels(reason=reason).inc(count)
    PAYLOAD_BYTES.labels(direction="up").inc(record.bytes_up)
    PAYLOAD_BYTES.labels(direction="down").inc(record.bytes_down)
    if math.isfinite(record.global_accuracy):
        GLOBAL_ACCURACY.set(record.global_accuracy)
        if previous_accuracy is not None and math.isfinite(previous_accuracy):
            GLOBAL_ACCURACY_CHANGE.set(record.global_accuracy - previous_accuracy)
    for role in ROLES:
        if role in record.client_accuracy:
            CLIENT_ACCURACY.labels(role=role).set(record.client_accuracy[role])
    if math.isfinite(record.distill_loss):
        DISTILL_LOSS.set(record.distill_loss)
    if math.isfinite(record.teacher_agreement):
        TEACHER_AGREEMENT.set(record.teacher_agreement)
    if record.teacher_accuracy is not None:
        TEACHER_ACCURACY.set(record.teacher_accuracy)
    observe_trust(record.trust)


def observe_trust(trust: dict[str, object]) -> None:
    """A round's trust summary (server/trust.py ``TrustLedger.summary``) as gauges."""
    count, low, median = trust.get("under_threshold"), trust.get("min"), trust.get("median")
    if isinstance(count, int):
        CLIENTS_DISTRUSTED.set(count)
    if isinstance(low, int | float):
        TRUST_MIN.set(low)
    if isinstance(median, int | float):
        TRUST_MEDIAN.set(median)


RESPONSE_SECONDS = 0.5  # after the last scrape was collected: time to send its response


class ScrapeClock:
    """The registry as the exporter serves it, remembering when it was last scraped: the
    exporter lingers after a run only for someone who is watching (:func:`serving`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.last: float | None = None  # time.monotonic() when the last scrape was collected

    def collect(self) -> Iterable[Metric]:
        yield from self.registry.collect()
        self.last = time.monotonic()  # every figure read: what is left is sending them

    def restricted_registry(self, names: Iterable[str]) -> object:
        self.last = time.monotonic()
        return self.registry.restricted_registry(names)

    def scraped_since(self, moment: float) -> bool:
        return self.last is not None and self.last >= moment


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread
    address: str
    clock: ScrapeClock

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def linger(self, seconds: float, poll: float = 0.1) -> float:
        """After the last round: wait until the exporter is scraped once more, at most
        ``seconds``, so that Prometheus sees the final figures; not at all when nobody
        scraped it during the run (``make run`` on a laptop). Returns the seconds waited."""
        if self.clock.last is None or seconds <= 0:
            log.debug("metrics exporter never scraped: no linger")
            return 0.0
        start = time.monotonic()
        while time.monotonic() - start < seconds and not self.clock.scraped_since(start):
            time.sleep(poll)
        if self.clock.scraped_since(start):
            # The scrape's figures are read; its response is still being written, and the
            # process may end right after the linger (daemon threads die mid-response).
            time.sleep(RESPONSE_SECONDS)
        return time.monotonic() - start


def serve(address: str) -> MetricsServer | None:
    """Serve ``/metrics`` on ``host:port``; on failure log why and go on without metrics."""
    if not address:
        return None
    host, _, port = address.rpartition(":")
    clock = ScrapeClock(REGISTRY)
    try:
        server, thread = start_http_server(
            int(port),
            addr=host or "127.0.0.1",
            registry=clock,  # a Collector by what it does: collect(), restricted_registry()
        )
    except ValueError:
        log.error("metrics-address %r is not HOST:PORT: metrics are not served", address)
        return None
    except OSError as exc:
        log.error(
            "cannot serve Prometheus metrics on %s (%s): the federation goes on without them; "
            "free the port or set another with --set metrics-address=HOST:PORT",
            address,
            exc.strerror or exc,
        )
        return None
    log.info("Prometheus metrics on http://%s/metrics", address)
    return MetricsServer(server=server, thread=thread, address=address, clock=clock)


@contextmanager
def serving(address: str, linger: float) -> Iterator[None]:
    """Serve ``/metrics`` on ``address`` (if it can) while the block runs; afterwards, if it
    was scraped, stay up until the next scrape, at most ``linger`` seconds (a few scrape
    intervals), so that Prometheus sees the final round (:meth:`MetricsServer.linger`)."""
    exporter = serve(address)
    try:
        yield
    finally:
        if exporter is not None:
            exporter.linger(linger)
            exporter.stop()
