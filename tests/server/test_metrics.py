"""Metric names follow Prometheus conventions; a round record becomes the right series."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from common.settings import PROJECT_ROOT
from server import metrics
from server.history import RoundRecord

NAME = re.compile(r"^skydistill_[a-z][a-z0-9_]*$")
UNIT_SUFFIXES = ("_seconds", "_bytes", "_total", "_ratio", "_info", "_loss")
GAUGES_WITHOUT_UNIT = {
    "skydistill_round",
    "skydistill_clients_selected",
    "skydistill_clients_distrusted",
}
GAUGES_WITHOUT_UNIT |= {"skydistill_rounds_planned"}  # counts: no unit


def _families() -> dict[str, object]:
    return {m.name: m for m in metrics.REGISTRY.collect()}


MEASURED = (
    "skydistill_global_accuracy_ratio",
    "skydistill_global_accuracy_change_ratio",
    "skydistill_distill_loss",
    "skydistill_teacher_agreement_ratio",
    "skydistill_teacher_accuracy_ratio",
    "skydistill_trust_min_ratio",
    "skydistill_trust_median_ratio",
)


def _fresh_exposition(code: str = "") -> str:
    """``generate_latest`` of the module's real registry in a new interpreter (a fresh run's
    ServerApp process), after running ``code`` there."""
    script = (
        "import sys\n"
        "from prometheus_client import generate_latest\n"
        "from server import metrics\n"
        "from server.history import RoundRecord\n"
        f"{code}\n"
        "sys.stdout.write(generate_latest(metrics.REGISTRY).decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=PROJECT_ROOT,
    )
    return done.stdout


def _series(text: str) -> set[str]:
    """Names of the samples in an exposition (no # HELP / # TYPE lines)."""
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def test_every_metric_follows_the_naming_rules() -> None:
    described = [family for m in metrics.METRICS for family in m.describe()]
    assert {f.name for f in described} >= {f.name for f in metrics.REGISTRY.collect()}
    for family in [*metrics.REGISTRY.collect(), *described]:
        name = family.name
        assert NAME.match(name), name
        assert family.documentation, f"{name} has no help text"
        if family.type == "counter":
            # prometheus-client adds _total to the exposed sample name
            assert not name.endswith("_total")
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
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


def test_trust_is_exported_as_a_summary_without_client_ids() -> None:
    trust = {
        "threshold": 0.5,
        "clients": 12,
        "under_threshold": 3,
        "min": 0.05,
        "median": 0.93,
        "flagged": ["drone-1", "satellite-0", "ground-station-2"],
        "scored": {"drone-1": 0.05},
    }
    metrics.observe_round(RoundRecord(round=4, trust=trust), previous_accuracy=None)
    get = metrics.REGISTRY.get_sample_value
    assert get("skydistill_clients_distrusted", {}) == 3
    assert get("skydistill_trust_min_ratio", {}) == pytest.approx(0.05)
    assert get("skydistill_trust_median_ratio", {}) == pytest.approx(0.93)
    text = generate_latest(metrics.REGISTRY).decode()
    assert "drone-1" not in text and "satellite-0" not in text
    metrics.observe_round(RoundRecord(round=5), previous_accuracy=None)  # no trust: unchanged
    assert get("skydistill_clients_distrusted", {}) == 3


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_exporter_nobody_scraped_does_not_linger() -> None:
    exporter = metrics.serve(f"127.0.0.1:{_free_port()}")
    assert exporter is not None
    try:
        assert exporter.linger(5.0) == 0.0
    finally:
        exporter.stop()


def test_a_scraped_exporter_lingers_until_the_next_scrape_at_most_its_linger() -> None:
    port = _free_port()
    exporter = metrics.serve(f"127.0.0.1:{port}")
    assert exporter is not None
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        urllib.request.urlopen(url, timeout=5).read()  # watched during the run
        assert 0.25 <= exporter.linger(0.3) < 2.0  # nobody scrapes again: the whole linger
        scraper = threading.Timer(0.5, lambda: urllib.request.urlopen(url, timeout=5).read())
        scraper.start()
        waited = exporter.linger(20.0)  # the next scrape ends it
        scraper.join()
        assert 0.4 <= waited < 10.0
    finally:
        exporter.stop()


# A ServerApp's process after its last round: serve, linger, end at once (os._exit: the
# exporter's daemon threads die with the process, as they do when the ServerApp returns).
_LINGER_THEN_EXIT = """
import os, sys
from server import metrics
exporter = metrics.serve(sys.argv[1])
metrics.set_planned_rounds(7)
print("up", flush=True)
sys.stdin.readline()  # the test has scraped once: the rounds are over
exporter.linger(20.0)
os._exit(0)
"""


def test_the_scrape_that_ends_the_linger_gets_its_whole_response_before_the_process_ends() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LINGER_THEN_EXIT, f"127.0.0.1:{port}"],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline() == "up\n"
        urllib.request.urlopen(url, timeout=5).read()  # watched during the run
        proc.stdin.write("\n")
        proc.stdin.flush()
        time.sleep(0.3)  # the linger has begun
        body = urllib.request.urlopen(url, timeout=5).read().decode()  # the scrape that ends it
        assert "skydistill_rounds_planned 7.0" in body and body.endswith("\n")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_metric_names_lists_the_exposed_names() -> None:
    names = metrics.metric_names()
    assert {"skydistill_round", "skydistill_client_replies_total", "skydistill_run_info"} <= names


@pytest.mark.integration
def test_a_fresh_run_exports_no_measured_value_before_it_is_measured() -> None:
    text = _fresh_exposition()
    series = _series(text)
    for name in MEASURED:  # no fake 0.0: the series does not exist yet
        assert name not in series, name
        assert f"# HELP {name} " not in text
    assert "skydistill_round" in series  # counters and the round gauge are there from the start
    assert 'skydistill_client_replies_total{status="failed"} 0.0' in text


@pytest.mark.integration
def test_after_a_round_without_refinement_the_teacher_series_stays_absent() -> None:
    text = _fresh_exposition(
        "metrics.set_run_info('FedKD', 'mean', 'int8', 'rgb')\n"
        "metrics.observe_round(RoundRecord(round=1, global_accuracy=0.8, distill_loss=0.4,"
        " teacher_agreement=0.9), None)"
    )
    assert "skydistill_global_accuracy_ratio 0.8\n" in text
    assert "skydistill_distill_loss 0.4\n" in text
    assert "skydistill_teacher_agreement_ratio 0.9\n" in text
    series = _series(text)
    assert "skydistill_teacher_accuracy_ratio" not in series
    assert "skydistill_global_accuracy_change_ratio" not in series  # no previous round


@pytest.mark.integration
def test_the_teacher_accuracy_is_exported_from_the_start_of_a_distillation_run() -> None:
    text = _fresh_exposition(
        "metrics.set_run_info('FedKD', 'mean', 'int8', 'rgb', teacher_accuracy=0.878)"
    )
    assert "skydistill_teacher_accuracy_ratio 0.878\n" in text
    assert "skydistill_global_accuracy_ratio" not in _series(text)


def test_a_measured_gauge_has_no_sample_until_set_then_its_last_value() -> None:
    registry = CollectorRegistry(auto_describe=True)
    gauge = metrics.MeasuredGauge("skydistill_test_ratio", "A test gauge.", registry)
    assert generate_latest(registry) == b""
    assert registry.get_sample_value("skydistill_test_ratio") is None
    gauge.set(0.25)
    gauge.set(0.5)
    text = generate_latest(registry).decode()
    assert "# TYPE skydistill_test_ratio gauge" in text
    assert "skydistill_test_ratio 0.5" in text
    assert registry.get_sample_value("skydistill_test_ratio") == 0.5


def test_metric_names_include_measured_gauges_without_samples() -> None:
    assert set(MEASURED) <= metrics.metric_names()
    assert "skydistill_client_accuracy_ratio" in metrics.metric_names()
