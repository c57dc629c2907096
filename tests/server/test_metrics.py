"""Metric names follow Prometheus conventions; a round record becomes the right series."""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest
from prometheus_client import generate_latest

from server import metrics
from server.history import RoundRecord

NAME = re.compile(r"^skydistill_[a-z][a-z0-9_]*$")
UNIT_SUFFIXES = ("_seconds", "_bytes", "_total", "_ratio", "_info", "_loss")
GAUGES_WITHOUT_UNIT = {"skydistill_round", "skydistill_clients_selected"}


def _families() -> dict[str, object]:
    return {m.name: m for m in metrics.REGISTRY.collect()}


def test_every_metric_follows_the_naming_rules() -> None:
    for family in metrics.REGISTRY.collect():
        name = family.name
        assert NAME.match(name), name
        assert family.documentation, f"{name} has no help text"
        if family.type == "counter":
            # prometheus-client adds _total to the exposed sample name
            assert not name.endswith("_total") and family.samples[0].name.endswith("_total")
            assert any(
                name.endswith(s) for s in ("_bytes", "_completed", "_replies", "_rejections")
            )
        exposed = name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        assert exposed.endswith(UNIT_SUFFIXES) or exposed in GAUGES_WITHOUT_UNIT, exposed
        for sample in family.samples:
            for label in sample.labels:
                assert label in {
                    "status",
                    "reason",
                    "direction",
                    "role",
                    "strategy",
                    "rule",
                    "codec",
                    "dataset",
                    "le",
                }, f"{sample.name} has label {label}"


def test_failure_series_exist_before_any_failure() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    for status in metrics.STATUSES:
        assert f'skydistill_client_replies_total{{status="{status}"}}' in text
    for reason in ("codec", "keys", "payload"):
        assert f'skydistill_reply_rejections_total{{reason="{reason}"}}' in text
    assert 'skydistill_payload_bytes_total{direction="up"}' in text


def test_observe_round_updates_counters_and_gauges() -> None:
    def value(name: str, **labels: str) -> float:
        v = metrics.REGISTRY.get_sample_value(name, labels)
        return 0.0 if v is None else v

    before_ok = value("skydistill_client_replies_total", status="ok")
    before_codec = value("skydistill_reply_rejections_total", reason="codec")
    before_up = value("skydistill_payload_bytes_total", direction="up")
    record = RoundRecord(
        round=3,
        global_accuracy=0.8,
        client_accuracy={"drone": 0.7},
        clients_selected=5,
        clients_ok=3,
        clients_failed=1,
        clients_rejected=1,
        rejections={"codec": 1},
        bytes_up=1000,
        bytes_down=2000,
        distill_loss=0.5,
        teacher_agreement=0.9,
        teacher_accuracy=0.87,
        seconds=12.0,
    )
    metrics.observe_round(record, previous_accuracy=0.9)
    assert value("skydistill_round") == 3
    assert value("skydistill_client_replies_total", status="ok") == before_ok + 3
    assert value("skydistill_reply_rejections_total", reason="codec") == before_codec + 1
    assert value("skydistill_payload_bytes_total", direction="up") == before_up + 1000
    assert value("skydistill_global_accuracy_ratio") == pytest.approx(0.8)
    assert value("skydistill_global_accuracy_change_ratio") == pytest.approx(-0.1)
    assert value("skydistill_client_accuracy_ratio", role="drone") == pytest.approx(0.7)
    assert value("skydistill_teacher_agreement_ratio") == pytest.approx(0.9)
    assert value("skydistill_teacher_accuracy_ratio") == pytest.approx(0.87)


def test_serve_exposes_metrics_and_a_busy_port_is_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = metrics.serve(f"127.0.0.1:{port}")
    assert exporter is not None
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "skydistill_round " in body
        assert metrics.serve(f"127.0.0.1:{port}") is None  # port taken: logged, no exception
        assert "cannot serve Prometheus metrics" in caplog.text
    finally:
        exporter.stop()


def test_metric_names_lists_the_exposed_names() -> None:
    names = metrics.metric_names()
    assert {"skydistill_round", "skydistill_client_replies_total", "skydistill_run_info"} <= names
