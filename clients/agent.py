"""The edge agent (``skydistill agent``; its options are parsed in :mod:`cli.agent`): run the
skydistill ClientApp on an edge node, through a Flower SuperNode.

The agent checks its TLS material (PEM CA certificate, OpenSSH EC key) and its local data
folder first (tiles, classes, bands, files skipped and why), then runs ``flower-supernode`` as
its child (:mod:`clients.agent_process`): stopping the agent by its PID (systemd, Kubernetes, a
test) stops the SuperNode, and with ``--max-wait-time`` a SuperNode that has not joined in time
is stopped and the agent exits 2. Once joined, a SuperNode that loses the SuperLink (a restart,
a crash, the network) keeps retrying with Flower's back-off and carries on when it is back;
``--reconnect-timeout`` bounds that (Flower's own ``--max-wait-time``), unset it retries for as
long as the agent runs. TLS is the default: ``--root-certificates`` (the CA that
signed the SuperLink's certificate) is required unless ``--insecure`` is asked for. The node
config carries the role, the data folder, a stable node name and partition id derived from it,
the folder where the node keeps its students, and the ``--node-config`` extras (num-threads).
"""

from __future__ import annotations

import json
import logging
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

from clients.agent_checks import (
    check_auth_key,
    check_root_certificates,
    parse_node_config,
)
from common import keys
from common.bands import DATASETS
from common.config import ROLES
from common.errors import ConfigError, DataNotFoundError
from common.processes import BIN, flower_env

log = logging.getLogger(__name__)

DEFAULT_RUNTIME_PORT = 9094


@dataclass(frozen=True)
class AgentOptions:
    role: str
    data_dir: Path
    superlink: str
    root_certificates: Path | None = None
    auth_key: Path | None = None
    health_address: str | None = None
    insecure: bool = False
    name: str = ""
    dataset: str = "rgb"
    state_dir: Path | None = None
    runtime_port: int = DEFAULT_RUNTIME_PORT
    max_wait_time: float | None = None  # to join (the agent's own deadline)
    reconnect_timeout: float | None = None  # once joined, to reach a lost SuperLink again
    extra_config: tuple[tuple[str, int], ...] = ()  # --node-config pairs (validated)

    @property
    def node_name(self) -> str:
        return self.name or f"{socket.gethostname()}-{self.role}"

    @property
    def state(self) -> Path:
        default = Path.home() / ".local" / "state" / "skydistill-agent" / self.node_name
        return (self.state_dir or default).expanduser().resolve()

    def validate(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"--role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}")
        if self.insecure and (self.root_certificates or self.auth_key):
            raise ConfigError(
                "--insecure cannot be combined with --root-certificates or --auth-key"
            )
        if not self.insecure and self.root_certificates is None:
            raise ConfigError(
                "no TLS material: pass --root-certificates CA.crt (the CA that signed the "
                "SuperLink's certificate; see `skydistill certs`), or --insecure to join "
                "over plain HTTP (test setups only)"
            )
        for flag, path in (("--root-certificates", self.root_certificates),
                           ("--auth-key", self.auth_key)):  # fmt: skip
            if path is not None and not path.is_file():
                raise ConfigError(f"{flag} {path}: no such file")
        for flag, seconds in (("--max-wait-time", self.max_wait_time),
                              ("--reconnect-timeout", self.reconnect_timeout)):  # fmt: skip
            if seconds is not None and not seconds > 0:
                raise ConfigError(f"{flag} {seconds:g}: must be > 0 seconds")
        parse_node_config([f"{k}={v}" for k, v in self.extra_config])
        if self.root_certificates is not None:
            check_root_certificates(self.root_certificates)
        if self.auth_key is not None:
            check_auth_key(self.auth_key)


def node_number(name: str) -> int:
    """A stable small integer for a node name (its partition id in the node config)."""
    return zlib.crc32(name.encode()) % 100_000


def node_config(opts: AgentOptions) -> str:
    """The ``--node-config`` string the ClientApp reads (strings JSON-quoted)."""
    values: dict[str, str | int] = {
        keys.NODE_ROLE: opts.role,
        keys.NODE_DATA_DIR: str(opts.data_dir.resolve()),
        keys.NODE_NAME: opts.node_name,
        keys.NODE_PARTITION_ID: node_number(opts.node_name),
        keys.NODE_STATE_DIR: str(opts.state / "students"),
        **dict(opts.extra_config),
    }
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in values.items())


def supernode_command(opts: AgentOptions) -> list[str]:
    cmd = [
        str(BIN / "flower-supernode"),
        "--superlink", opts.superlink,
        "--node-config", node_config(opts),
        "--port", str(opts.runtime_port),
    ]  # fmt: skip
    if opts.insecure:
        cmd.append("--insecure")
    if opts.root_certificates is not None:
        cmd += ["--root-certificates", str(opts.root_certificates.resolve())]
    if opts.auth_key is not None:
        cmd += ["--auth-supernode-private-key", str(opts.auth_key.resolve())]
    if opts.health_address:
        cmd += ["--health-server-address", opts.health_address]
    if opts.reconnect_timeout is not None:
        # Flower's limit applies to every call, joining included; the agent's --max-wait-time
        # is its own deadline to join, so that a short one does not end a node that lost its
        # SuperLink for longer (a server restart, a resumed run).
        cmd += ["--max-wait-time", str(opts.reconnect_timeout)]
    return cmd


def run_agent(opts: AgentOptions) -> int:
    """Check the TLS material and the data folder, then run ``flower-supernode`` until it
    exits (its exit code); raises FlowerError if it does not join within --max-wait-time."""
    from clients.agent_process import run_supernode

    opts.validate()
    if not opts.data_dir.is_dir():
        raise DataNotFoundError(
            f"--data-dir {opts.data_dir}: no such folder; it must hold one sub-folder per "
            "class (<Class>/<tile>) of the node's own imagery"
        )
    from clients.local_data import inspect_folder  # torch: only when an agent starts

    report = inspect_folder(opts.data_dir, DATASETS[opts.dataset])
    log.info("data check: %s", report.summary())
    home = opts.state / "flwr-home"
    home.mkdir(parents=True, exist_ok=True)
    cmd = supernode_command(opts)
    log.info(
        "joining %s as %s (%s, %s)", opts.superlink, opts.node_name, opts.role,
        "INSECURE plain HTTP" if opts.insecure else "TLS",
    )  # fmt: skip
    if opts.auth_key is None and not opts.insecure:
        log.warning("no --auth-key: only a SuperLink without node authentication accepts it")
    return run_supernode(cmd, flower_env(home), opts.superlink, opts.max_wait_time)
