"""What an edge agent checks before it starts a SuperNode: its TLS material (a PEM CA
certificate, an OpenSSH EC private key) and the extra node-config pairs it passes on."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from common import keys
from common.errors import ConfigError

# Node-config keys the agent sets from its own flags: never from --node-config.
RESERVED = {
    keys.NODE_ROLE: "--role",
    keys.NODE_DATA_DIR: "--data-dir",
    keys.NODE_NAME: "--name",
    keys.NODE_PARTITION_ID: "--name (the partition id is derived from the node name)",
    keys.NODE_STATE_DIR: "--state-dir",
    keys.NODE_NUM_PARTITIONS: "nothing (an agent is one node, not a simulated partition)",
}
EXTRA_KEYS = {keys.NODE_NUM_THREADS: "torch threads per local round (an integer >= 1)"}
EXTRA_HELP = "; ".join(f"{k}: {why}" for k, why in EXTRA_KEYS.items())
_PAIR = re.compile(r"(\S+?)=('[^']*'|\"[^\"]*\"|\S+)")


def _read(flag: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot be read ({exc.strerror})") from exc


def check_root_certificates(path: Path) -> int:
    """Parse ``path`` as PEM X.509 certificates; return how many it holds."""
    from cryptography import x509

    data = _read("--root-certificates", path)
    what = "is empty" if not data.strip() else f"holds no PEM certificate ({len(data):,} bytes)"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if b"PRIVATE KEY-----" in data:
            what = "holds a private key, not a certificate"
        raise ConfigError(
            f"--root-certificates {path}: {what}; pass the PEM CA certificate that signed the "
            "SuperLink's certificate (`skydistill certs DIR` writes DIR/ca.crt)"
        )
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(
            f"--root-certificates {path}: a PEM block that is not a valid X.509 certificate "
            f"({exc}); pass the CA certificate (`skydistill certs DIR` writes DIR/ca.crt)"
        ) from exc
    now = dt.datetime.now(dt.UTC)
    for cert in certs:
        if cert.not_valid_after_utc < now:
            raise ConfigError(
                f"--root-certificates {path}: the certificate {cert.subject.rfc4514_string()} "
                f"expired on {cert.not_valid_after_utc:%Y-%m-%d}; pass the current CA "
                "certificate (see deploy/README.md on rotation)"
            )
    return len(certs)


def check_auth_key(path: Path) -> None:
    """``path`` must be an OpenSSH elliptic-curve private key (what Flower signs with)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    data = _read("--auth-key", path)
    try:
        key = load_ssh_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"--auth-key {path}: not an unencrypted OpenSSH private key ({exc}); pass the "
            "agent's private key (`skydistill certs DIR --agent NAME` writes DIR/agents/NAME)"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(
            f"--auth-key {path}: a {type(key).__name__}; Flower's node authentication needs "
            "an elliptic-curve key (`skydistill certs DIR --agent NAME` makes one)"
        )


def _value(key: str, raw: str) -> int:
    text = raw.strip("'\"")
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"--node-config {key}={raw}: {key} must be an integer >= 1")
    return value


def parse_node_config(items: list[str]) -> dict[str, int]:
    """Extra ``KEY=VALUE`` pairs (several per item, space-separated) for the ClientApp."""
    out: dict[str, int] = {}
    for item in items:
        pairs = _PAIR.findall(item)
        leftover = _PAIR.sub("", item).strip()
        if leftover or not pairs:
            raise ConfigError(
                f"--node-config {item!r}: expected KEY=VALUE pairs separated by spaces, "
                "e.g. --node-config num-threads=2"
            )
        for key, raw in pairs:
            if key in RESERVED:
                raise ConfigError(
                    f"--node-config {key}: the agent sets {key} itself from {RESERVED[key]}"
                )
            if key not in EXTRA_KEYS:
                raise ConfigError(
                    f"--node-config {key}: not a node-config key the ClientApp reads "
                    f"(accepted: {EXTRA_HELP})"
                )
            out[key] = _value(key, raw)
    return out
