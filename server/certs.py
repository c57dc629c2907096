"""``skydistill certs``: the TLS and node-authentication material of a deployment.

Makes, in one folder:

- ``ca.crt`` / ``ca.key``: a private certificate authority (openssl);
- ``server.pem`` / ``server.key``: the SuperLink's certificate, signed by the CA, valid for
  127.0.0.1, localhost and any extra names (SANs) the operator gives;
- ``agents/<name>`` / ``agents/<name>.pub``: one ECDSA P-384 key pair per agent in OpenSSH
  format, the format Flower's SuperNode authentication reads (``flwr supernode register``
  takes the ``.pub`` file, ``flower-supernode --auth-supernode-private-key`` the other).

``deploy/certs.sh`` does the same with openssl and ssh-keygen alone.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import SkydistillError

log = logging.getLogger(__name__)

DEFAULT_NAMES = ("127.0.0.1", "localhost")
CA_DAYS = 3650
SERVER_DAYS = 825


class CertificateError(SkydistillError):
    """openssl is missing or failed to make a certificate."""


@dataclass(frozen=True)
class Material:
    """Paths of what :func:`make_certs` wrote."""

    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    agents: dict[str, Path]  # agent name -> private key (public key: same path + ".pub")


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise CertificateError("openssl not found: install it (apt-get install openssl)")
    done = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise CertificateError(f"openssl {args[0]} failed: {done.stderr.strip()[-1000:]}")


def _san(names: Sequence[str]) -> str:
    entries = []
    for name in dict.fromkeys([*DEFAULT_NAMES, *names]):
        try:
            ipaddress.ip_address(name)
            entries.append(f"IP:{name}")
        except ValueError:
            entries.append(f"DNS:{name}")
    return ",".join(entries)


def make_ca_and_server(folder: Path, names: Sequence[str] = ()) -> tuple[Path, Path, Path]:
    """A CA and a server certificate signed by it (kept if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, server_cert, server_key = folder / "ca.crt", folder / "server.pem", folder / "server.key"
    if not (ca.is_file() and (folder / "ca.key").is_file()):
        _openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "ca.key", cwd=folder)
        _openssl(
            "req", "-x509", "-new", "-key", "ca.key", "-sha384", "-days", str(CA_DAYS),
            "-subj", "/CN=skydistill CA", "-out", "ca.crt", cwd=folder,
        )  # fmt: skip
    if not (server_cert.is_file() and server_key.is_file()):
        _openssl(
            "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "server.key", cwd=folder
        )
        _openssl(
            "req", "-new", "-key", "server.key", "-subj", "/CN=skydistill-superlink",
            "-out", "server.csr", cwd=folder,
        )  # fmt: skip
        (folder / "server.ext").write_text(
            f"subjectAltName={_san(names)}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", str(SERVER_DAYS), "-sha384",
            "-extfile", "server.ext", "-out", "server.pem", cwd=folder,
        )  # fmt: skip
        (folder / "server.csr").unlink(missing_ok=True)
    for key in ("ca.key", "server.key"):
        os.chmod(folder / key, 0o600)
    return ca, server_cert, server_key


def make_agent_key(folder: Path, name: str) -> Path:
    """An ECDSA P-384 key pair for SuperNode authentication (kept if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / name
    public = folder / f"{name}.pub"
    if private.is_file() and public.is_file():
        return private
    key = ec.generate_private_key(ec.SECP384R1())
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    os.chmod(private, 0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + f" skydistill-{name}\n".encode()
    )
    return private


def make_certs(folder: Path, names: Sequence[str] = (), agents: Sequence[str] = ()) -> Material:
    """Everything a deployment needs; existing files are kept (re-run to add agents)."""
    ca, cert, key = make_ca_and_server(folder, names)
    keys = {name: make_agent_key(folder / "agents", name) for name in agents}
    log.info("certificates in %s (SANs %s); %d agent keys", folder, _san(names), len(keys))
    return Material(folder=folder, ca=ca, server_cert=cert, server_key=key, agents=keys)
