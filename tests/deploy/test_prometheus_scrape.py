"""Integration: the real Prometheus server scrapes a real simulation through deploy/'s config."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import RunConfig
from common.processes import free_port, stop_tree
from common.settings import PROJECT_ROOT
from simulations.simulate import simulate
from tests.deploy.fleet import quiet_port

pytestmark = pytest.mark.integration  # starts real processes

DEPLOY = PROJECT_ROOT / "deploy" / "prometheus"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: `make test` installs Debian's prometheus package")
    return path


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Prometheus on 127.0.0.1 with deploy/prometheus/prometheus.yml aimed at a free port."""
    target_port = quiet_port()
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == "skydistill"]
    assert len(jobs) == 1, "deploy/prometheus/prometheus.yml needs one job named skydistill"
    for static in jobs[0]["static_configs"]:
        static["targets"] = [f"127.0.0.1:{target_port}"]
    jobs[0]["scrape_interval"] = "1s"
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(DEPLOY / "rules.yml", tmp_path / "rules.yml")
    web_port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            _binary("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web_port}/-/ready", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "prometheus.log").read_text()[-3000:])
                time.sleep(0.3)
        yield f"127.0.0.1:{target_port}", web_port
    finally:
        stop_tree(proc)
        log.close()


def _query(web_port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{web_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _scalar(web_port: int, expr: str) -> float:
    result = _query(web_port, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


def test_prometheus_scrapes_what_the_report_says(
    prometheus: tuple[str, int], fixture_data: Path, tmp_path: Path
) -> None:
    metrics_address, web_port = prometheus
    cfg = RunConfig(
        data_dir=str(fixture_data),
        num_clients=3,
        num_rounds=3,
        fraction_train=1.0,
        reference_per_round=8,
        teacher_epochs=1,  # one epoch per ground model: the other integration tests' cache
        global_pretrain_epochs=1,
        preinstall_epochs=1,
        metrics_address=metrics_address,
        metrics_linger=5.0,
    )
    report = simulate(cfg, tmp_path / "run", progress=False)
    rounds = report["rounds"]
    window = "[15m]"
    assert _scalar(web_port, f"max_over_time(skydistill_round{window})") == len(rounds)
    assert _scalar(web_port, f"max_over_time(skydistill_rounds_completed_total{window})") == 3
    ok = _scalar(web_port, f'max_over_time(skydistill_client_replies_total{{status="ok"}}{window})')
    assert ok == sum(r["clients_ok"] for r in rounds)
    failed = _scalar(
        web_port, f'max_over_time(skydistill_client_replies_total{{status="failed"}}{window})'
    )
    assert failed == sum(r["clients_failed"] for r in rounds) == 0
    accuracy = _scalar(web_port, f"last_over_time(skydistill_global_accuracy_ratio{window})")
    assert accuracy == pytest.approx(report["final"]["global_accuracy"])
    up = _scalar(
        web_port, f'max_over_time(skydistill_payload_bytes_total{{direction="up"}}{window})'
    )
    assert up == sum(r["bytes_up"] for r in rounds)
    info = _query(web_port, f"last_over_time(skydistill_run_info{window})")
    assert info and info[0]["metric"]["codec"] == "int8"
    roles = _query(web_port, f"last_over_time(skydistill_client_accuracy_ratio{window})")
    assert {r["metric"]["role"] for r in roles} == {"satellite", "drone", "ground-station"}
