"""Every Prometheus metric skydistill exports, on its own registry (one module, JupyterHub style).

Names follow Prometheus conventions: ``skydistill_`` prefix, base units, ``_total`` counters,
``_ratio`` for fractions. Label values are small enums (status, reason, direction, role), never
client ids or round numbers. Failure series exist from the start, before the first failure.
Client-side figures arrive as reply metrics and are turned into server metrics here; no client
process exports Prometheus itself.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from common.config import ROLES
from server.history import RoundRecord
from server.replies import REJECTION_REASONS

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

STATUSES = ("ok", "failed", "rejected")
DIRECTIONS = ("up", "down")

ROUND = Gauge("skydistill_round", "Last completed federated round.", registry=REGISTRY)
ROUNDS_COMPLETED = Counter(
    "skydistill_rounds_completed", "Federated rounds completed.", registry=REGISTRY
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
GLOBAL_ACCURACY = Gauge(
    "skydistill_global_accuracy_ratio",
    "Global student's accuracy on the server's test split after the last round.",
    registry=REGISTRY,
)
GLOBAL_ACCURACY_CHANGE = Gauge(
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
DISTILL_LOSS = Gauge(
    "skydistill_distill_loss",
    "Server-side distillation loss of the last round.",
    registry=REGISTRY,
)
TEACHER_AGREEMENT = Gauge(
    "skydistill_teacher_agreement_ratio",
    "Share of reference tiles whose aggregated-knowledge argmax equals the teacher's.",
    registry=REGISTRY,
)
TEACHER_ACCURACY = Gauge(
    "skydistill_teacher_accuracy_ratio",
    "Refined teacher's accuracy on the server's test split (teacher-refine-epochs > 0).",
    registry=REGISTRY,
)
RUN_INFO = Info(
    "skydistill_run",
    "What is running: strategy, aggregation rule, codec, dataset.",
    registry=REGISTRY,
)

for _status in STATUSES:
    CLIENT_REPLIES.labels(status=_status)
for _reason in REJECTION_REASONS:
    REPLY_REJECTIONS.labels(reason=_reason)
for _direction in DIRECTIONS:
    PAYLOAD_BYTES.labels(direction=_direction)


def metric_names() -> set[str]:
    """Base names of every exported metric (as a dashboard or alert refers to them)."""
    names: set[str] = set()
    for metric in REGISTRY.collect():
        suffix = {"counter": "_total", "info": "_info"}.get(metric.type, "")
        names.add(metric.name + suffix)
    return names


def set_run_info(strategy: str, rule: str, codec: str, dataset: str) -> None:
    """Label the run and start the no-round-completed clock."""
    RUN_INFO.info({"strategy": strategy, "rule": rule, "codec": codec, "dataset": dataset})
    LAST_ROUND_TIMESTAMP.set_to_current_time()


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


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread
    address: str

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(address: str) -> MetricsServer | None:
    """Serve ``/metrics`` on ``host:port``; on failure log why and go on without metrics."""
    if not address:
        return None
    host, _, port = address.rpartition(":")
    try:
        server, thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=REGISTRY)
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
    return MetricsServer(server=server, thread=thread, address=address)
