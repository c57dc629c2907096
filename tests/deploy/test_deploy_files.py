"""The deployment files under deploy/ that can be checked without a cluster.

Compose file and Kubernetes manifests parse as YAML with the expected services and kinds;
systemd units pass ``systemd-analyze verify`` (skipped only where systemd-analyze is absent);
``deploy/certs.sh`` makes a CA-signed server certificate and agent keys Flower can load.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from server.certs import make_certs

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ROLES = {"satellite", "drone", "ground-station"}


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


def test_kubernetes_manifests_have_the_expected_kinds_and_grpc_probes() -> None:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in _docs(path):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
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
