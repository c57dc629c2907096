"""The deployment files under deploy/ that can be checked without a cluster.

Compose file parses as YAML with the expected services; every Kubernetes manifest validates
against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors;
the schemas ship inside the wheel, so this runs offline) for the oldest and newest Kubernetes
versions the manifests target; systemd units pass ``systemd-analyze verify`` (skipped only
where systemd-analyze is absent); ``deploy/certs.sh`` makes a CA-signed server certificate and
agent keys Flower can load; ``deploy/ray/stop.sh`` stops one cluster's processes by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from server.certs import make_certs

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ROLES = {"satellite", "drone", "ground-station"}
# gRPC liveness/readiness probes are GA since Kubernetes 1.27; newest: the schemas shipped.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_compose_has_superlink_three_agents_and_monitoring() -> None:
    compose = _docs(DEPLOY / "compose.yaml")[0]
    services = compose["services"]
    assert set(services) == {"superlink", "prometheus", "grafana", *ROLES}
    assert services["superlink"]["command"][0] == "server"
    assert "--certs" in services["superlink"]["command"]
    data_volumes = set()
    for role in ROLES:
        cmd = services[role]["command"]
        assert cmd[0] == "agent" and cmd[cmd.index("--role") + 1] == role
        assert "--insecure" not in cmd and "--root-certificates" in cmd and "--auth-key" in cmd
        assert "healthcheck" in services[role]
        data_volumes |= {v for v in services[role]["volumes"] if v.endswith(":/data/private:ro")}
    assert len(data_volumes) == 3  # each agent its own data
    for path in ("./prometheus", "./grafana/provisioning", "./grafana/dashboards"):
        assert (DEPLOY / path).is_dir()


def _schema_errors(path: Path, version: str) -> list[str]:
    """Every document of ``path`` checked against the Kubernetes ``version`` schemas (strict)."""
    errors = []
    for i, doc in enumerate(_docs(path)):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            errors.append(f"{path.name} doc {i} ({doc.get('kind')}) {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{path.name} doc {i}: no schema for {exc}")
    return errors


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_validate_against_the_kubernetes_schemas(
    path: Path, version: str
) -> None:
    assert _docs(path), f"{path} holds no manifest"
    assert _schema_errors(path, version) == []


BROKEN = {
    "unknown field": ("ports:\n            - {containerPort: 5555, protocl: TCP}", "protocl"),
    "wrong type": ("ports:\n            - {containerPort: health}", "containerPort"),
    "misplaced field": ("ports: []\n          replicas: 2", "replicas"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_schema_validation_rejects_a_broken_manifest(case: str, tmp_path: Path) -> None:
    snippet, culprit = BROKEN[case]
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(
        f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: broken, namespace: skydistill}}
spec:
  selector: {{matchLabels: {{app: broken}}}}
  template:
    metadata: {{labels: {{app: broken}}}}
    spec:
      containers:
        - name: agent
          image: skydistill:0.1.0
          {snippet}
"""
    )
    for version in K8S_VERSIONS:
        errors = _schema_errors(manifest, version)
        assert len(errors) == 1 and culprit in errors[0], errors


def test_schema_validation_rejects_an_unknown_kind(tmp_path: Path) -> None:
    manifest = tmp_path / "kind.yaml"
    manifest.write_text("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n")
    (error,) = _schema_errors(manifest, K8S_VERSIONS[-1])
    assert "no schema" in error


def test_kubernetes_manifests_have_the_expected_kinds_and_grpc_probes() -> None:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for path in MANIFESTS:
        for doc in _docs(path):
            kinds.setdefault(doc["kind"], []).append(doc)
    assert {"Namespace", "Secret", "Deployment", "Service"} <= set(kinds)
    deployments = {d["metadata"]["name"]: d for d in kinds["Deployment"]}
    assert "superlink" in deployments
    assert [s["metadata"]["name"] for s in kinds["Service"]] == ["superlink"]
    roles = set()
    for name, dep in deployments.items():
        if name == "superlink":
            continue
        container = dep["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        roles.add(args[args.index("--role") + 1])
        health = args[args.index("--health-address") + 1]
        port = int(health.rsplit(":", 1)[1])
        assert container["livenessProbe"]["grpc"]["port"] == port
        assert container["readinessProbe"]["grpc"]["port"] == port
        secret = dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
        assert secret in {s["metadata"]["name"] for s in kinds["Secret"]}
    assert roles == ROLES


@pytest.mark.integration
def test_systemd_units_verify(tmp_path: Path) -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} == {"skydistill-superlink.service", "skydistill-agent@.service"}
    for unit in units:
        assert "skydistill " in unit.read_text() and "ExecStart=" in unit.read_text()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: unit files parsed only")
    # verify wants ExecStart to exist: point it at this environment's skydistill.
    exe = Path(sys.executable).with_name("skydistill")
    for unit in units:
        text = unit.read_text().replace("/opt/skydistill/venv/bin/skydistill", str(exe))
        name = unit.name.replace("@.service", "@sat-1.service")
        (tmp_path / name).write_text(text)
        done = subprocess.run(
            [analyze, "verify", str(tmp_path / name)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("tool", ["certs.sh", "skydistill certs"])
@pytest.mark.integration
def test_certificates_verify_and_agent_keys_load(tool: str, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    if tool == "certs.sh":
        if shutil.which("ssh-keygen") is None:
            pytest.skip("ssh-keygen is not installed (deploy/certs.sh needs it for agent keys)")
        subprocess.run(
            ["bash", str(DEPLOY / "certs.sh"), str(out), "--name", "superlink", "--agent", "a1"],
            check=True,
            capture_output=True,
        )
    else:
        make_certs(out, ["superlink"], ["a1"])
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(out / "ca.crt"), str(out / "server.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    san = subprocess.run(
        ["openssl", "x509", "-in", str(out / "server.pem"), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "127.0.0.1" in san and "DNS:localhost" in san and "DNS:superlink" in san
    private = load_ssh_private_key((out / "agents" / "a1").read_bytes(), None)
    public = load_ssh_public_key((out / "agents" / "a1.pub").read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp384r1"
    assert (out / "agents" / "a1").stat().st_mode & 0o077 == 0


_FAKE_RAY = """
import signal, subprocess, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # like Ray's gcs_server at times
if sys.argv[2] == "parent":
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("ready", flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.integration
def test_ray_stop_script_stops_only_its_own_cluster_by_pid(tmp_path: Path) -> None:
    """Processes naming RAY_TEMP_DIR and their children stop (SIGKILL for one that ignores
    SIGTERM); a process of another cluster (another temp folder) keeps running."""
    mine, other = tmp_path / "ray-mine", tmp_path / "ray-other"
    procs = {}
    child = 0
    for key, folder, kind in (
        ("plain", mine, "plain"),
        ("stubborn", mine, "stubborn"),
        ("parent", mine, "parent"),
        ("other", other, "plain"),
    ):
        procs[key] = subprocess.Popen(
            [sys.executable, "-c", _FAKE_RAY, f"--temp-dir={folder}/session", kind],
            stdout=subprocess.PIPE,
        )
    try:
        for proc in procs.values():
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        child = int(
            subprocess.run(
                ["pgrep", "-P", str(procs["parent"].pid)], capture_output=True, text=True
            ).stdout.split()[0]
        )
        done = subprocess.run(
            ["bash", str(DEPLOY / "ray" / "stop.sh")],
            env={"PATH": "/usr/bin:/bin", "RAY_TEMP_DIR": str(mine), "RAY_STOP_GRACE": "2"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SIGKILL" in done.stdout  # the stubborn one needed it
        for key in ("plain", "stubborn", "parent"):
            procs[key].wait(timeout=5)
        assert not _alive(child)
        assert procs["other"].poll() is None, "stop.sh stopped another cluster's process"
        again = subprocess.run(
            ["bash", str(DEPLOY / "ray" / "stop.sh")],
            env={"PATH": "/usr/bin:/bin", "RAY_TEMP_DIR": str(mine)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert "nothing to stop" in again.stdout
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)
