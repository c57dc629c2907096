"""An agent checks its TLS material and extra node config before it starts a SuperNode."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from cli.agent import options_from
from cli.main import build_parser
from clients.agent import AgentOptions, node_config
from clients.agent_checks import check_auth_key, check_root_certificates, parse_node_config
from common.errors import ConfigError
from server.certs import make_certs


def _self_signed(path: Path, days_valid: int) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-ca")])
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=days_valid)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(end - dt.timedelta(days=30))
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_root_certificates_must_be_pem_x509(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs", agents=["a1"]).folder
    assert check_root_certificates(certs / "ca.crt") == 1
    cases = {
        "empty.crt": (b"", "is empty"),
        "text.crt": (b"hello\n", "holds no PEM certificate (6 bytes)"),
        "key.crt": ((certs / "server.key").read_bytes(), "holds a private key, not a cert"),
        "broken.crt": (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "a PEM block that is not a valid X.509 certificate",
        ),
    }
    for name, (content, what) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ConfigError, match=re.escape(f"--root-certificates {path}: {what}")):
            check_root_certificates(path)
    with pytest.raises(ConfigError, match="expired on"):
        check_root_certificates(_self_signed(tmp_path / "old.crt", days_valid=-1))
    assert check_root_certificates(_self_signed(tmp_path / "new.crt", days_valid=10)) == 1


def test_auth_key_must_be_an_openssh_ec_private_key(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs", agents=["a1"]).folder
    check_auth_key(certs / "agents" / "a1")
    with pytest.raises(ConfigError, match="not an unencrypted OpenSSH private key"):
        check_auth_key(certs / "agents" / "a1.pub")
    ed = tmp_path / "ed"
    ed.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="Ed25519PrivateKey.*elliptic-curve"):
        check_auth_key(ed)


def test_node_config_extras_are_validated() -> None:
    assert parse_node_config(["num-threads=2"]) == {"num-threads": 2}
    assert parse_node_config(["num-threads='3'"]) == {"num-threads": 3}
    assert parse_node_config([]) == {}
    for item, message in (
        ("role='drone'", "the agent sets role itself from --role"),
        ("data-dir=/x", "from --data-dir"),
        ("threads=2", "not a node-config key the ClientApp reads .accepted: num-threads"),
        ("num-threads=0", "num-threads must be an integer >= 1"),
        ("num-threads=two", "num-threads must be an integer >= 1"),
        ("num-threads", "expected KEY=VALUE pairs"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_node_config([item])


def test_agent_option_node_config_reaches_the_supernode(tmp_path: Path) -> None:
    argv = ["agent", "--role", "drone", "--data-dir", str(tmp_path), "--superlink", "h:1"]
    args = build_parser().parse_args([*argv, "--insecure", "--node-config", "num-threads=2"])
    opts = options_from(args)
    assert opts.extra_config == (("num-threads", 2),) and opts.name == ""
    opts.validate()
    assert " num-threads=2" in node_config(opts) and 'role="drone"' in node_config(opts)
    with pytest.raises(ConfigError, match="--node-config partition-id"):
        options_from(build_parser().parse_args([*argv, "--node-config", "partition-id=3"]))
    with pytest.raises(ConfigError, match="--max-wait-time -1: must be > 0"):
        AgentOptions("drone", tmp_path, "h:1", insecure=True, max_wait_time=-1).validate()
