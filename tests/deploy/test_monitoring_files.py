"""The Prometheus and Grafana files under deploy/ are valid and match the exported metrics.

Real tools, no mocks: ``promtool`` checks the config and rules and runs the alert unit tests in
``rules_test.yml``; the dashboard's queries are parsed by promtool too and compared, by metric
name, with what ``server.metrics`` exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from server import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules.yml"
RULES_TEST = Path(__file__).with_name("rules_test.yml")
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "skydistill.json"
DATASOURCE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "skydistill.yml"
DATASOURCE_REF = {"type": "prometheus", "uid": "prometheus"}

METRIC_NAME = re.compile(r"skydistill_[a-z_]+")
# Sample suffixes that map back to a base name: histogram series, and a counter's _created.
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")
CREATED_SUFFIX = re.compile(r"_created$")


def exported_metrics() -> frozenset[str]:
    """Base names of every metric ``server.metrics`` exports (counters with ``_total``, the
    info metric with ``_info``): the one module that declares them."""
    names = frozenset(metrics.metric_names())
    assert names, "server.metrics declares no metric"
    return names


def base_name(name: str, known: frozenset[str]) -> str:
    """Map a sample name (``_bucket``, ``_sum``, ``_count``, ``_created``) to its metric."""
    if name in known:
        return name
    if HISTOGRAM_SUFFIX.search(name):
        return HISTOGRAM_SUFFIX.sub("", name)
    if CREATED_SUFFIX.search(name):
        return CREATED_SUFFIX.sub("_total", name)
    return name


def referenced_metrics(exprs: list[str], known: frozenset[str]) -> set[str]:
    return {base_name(name, known) for expr in exprs for name in METRIC_NAME.findall(expr)}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: `make test` installs it with apt "
            "(Debian package `prometheus`); or run `sudo apt-get install prometheus`"
        )
    return path


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_dashboard() -> dict[str, Any]:
    with DASHBOARD.open(encoding="utf-8") as f:
        data = json.load(f)
    assert isinstance(data, dict)
    return data


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in iter_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


# ---- Prometheus -------------------------------------------------------------------------------


@pytest.mark.integration
def test_promtool_check_config() -> None:
    # promtool resolves rule_files relative to the config file; run from elsewhere to prove it.
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@pytest.mark.integration
def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(RULES), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_scrapes_the_server_exporter_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert [PROMETHEUS_DIR / p for p in config["rule_files"]] == [RULES]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "skydistill"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["127.0.0.1:9464"]
    # A `role` target label would clobber skydistill_client_accuracy_ratio's own `role` label.
    for sc in job["static_configs"]:
        assert "role" not in sc.get("labels", {})


@pytest.mark.integration
def test_alert_rules_fire_as_specified() -> None:
    """NoRoundCompleted on an old timestamp, HighFailureRatio at 50% failures, AccuracyDrop
    at -0.1, ServerGone for a server that died (or vanished) before its last planned round,
    and none of them on healthy input or a run that ended (see rules_test.yml)."""
    result = run_promtool("test", "rules", str(RULES_TEST), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_have_severity_and_annotations() -> None:
    alerts = {
        rule["alert"]: rule
        for group in load_yaml(RULES)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {
        "SkydistillNoRoundCompleted",
        "SkydistillHighFailureRatio",
        "SkydistillAccuracyDrop",
        "SkydistillServerGone",
    } <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        for key in ("summary", "description"):
            assert "$value" in rule["annotations"][key], (name, key)


def test_server_gone_compares_the_planned_rounds_with_the_last_round_and_asks_up() -> None:
    (rule,) = [
        r for g in load_yaml(RULES)["groups"] for r in g["rules"]
        if r.get("alert") == "SkydistillServerGone"
    ]  # fmt: skip
    names = set(METRIC_NAME.findall(rule["expr"]))
    assert names == {"skydistill_rounds_planned", "skydistill_round"}
    assert "up == 1" in rule["expr"]
    # The ServerApp exports the planned rounds from the start (it is set before it serves).
    metrics.set_planned_rounds(7)
    assert metrics.REGISTRY.get_sample_value("skydistill_rounds_planned") == 7
    assert "skydistill_rounds_planned 7.0" in generate_latest(metrics.REGISTRY).decode()


def test_rules_reference_only_exported_metrics() -> None:
    known = exported_metrics()
    unknown = referenced_metrics(rule_exprs(), known) - known
    assert not unknown, f"rules.yml refers to metrics the server does not export: {unknown}"


# ---- Grafana ----------------------------------------------------------------------------------


def test_dashboard_identity() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "skydistill"
    assert dashboard["title"] == "skydistill federation"
    assert dashboard["schemaVersion"] == 39
    ids = [panel["id"] for panel in iter_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_datasource_references() -> None:
    dashboard = load_dashboard()
    for panel in iter_panels(dashboard["panels"]):
        if panel.get("type") == "row":
            continue
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF, variable["name"]


def test_dashboard_references_only_exported_metrics() -> None:
    known = exported_metrics()
    exprs = dashboard_exprs(load_dashboard())
    assert exprs
    unknown = referenced_metrics(exprs, known) - known
    assert not unknown, f"dashboard refers to metrics the server does not export: {unknown}"


def test_dashboard_plots_every_exported_metric() -> None:
    known = exported_metrics()
    missing = known - referenced_metrics(dashboard_exprs(load_dashboard()), known)
    assert not missing, f"no dashboard panel plots: {sorted(missing)}"


@pytest.mark.integration
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel query (as a recording rule, with Grafana variables filled)."""
    exprs = dashboard_exprs(load_dashboard())
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr.replace("$instance", ".*")}
                    for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = run_promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_datasource_provisioning() -> None:
    provisioning = load_yaml(DATASOURCE)
    assert provisioning["apiVersion"] == 1
    (source,) = provisioning["datasources"]
    assert source["type"] == DATASOURCE_REF["type"]
    assert source["uid"] == DATASOURCE_REF["uid"]
    assert source["url"] == "http://127.0.0.1:9090"


def test_dashboard_provider_points_at_the_dashboards_folder() -> None:
    provisioning = load_yaml(DASHBOARD_PROVIDER)
    assert provisioning["apiVersion"] == 1
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    # The provider reads a container path; deploy/grafana/dashboards is what gets mounted there
    # (the provider file's comments show the volume), so it must hold the dashboard.
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    volume = "./deploy/grafana/dashboards:/var/lib/grafana/dashboards"
    assert volume in DASHBOARD_PROVIDER.read_text(encoding="utf-8")
    assert sorted(p.name for p in (GRAFANA_DIR / "dashboards").glob("*.json")) == [DASHBOARD.name]
    # Both provisioning files sit where Grafana looks once provisioning/ is mounted at
    # /etc/grafana/provisioning.
    assert DATASOURCE.parent == GRAFANA_DIR / "provisioning" / "datasources"
    assert DASHBOARD_PROVIDER.parent == GRAFANA_DIR / "provisioning" / "dashboards"
