"""The ground side of a deployment on Flower's deployment engine: the SuperLink (TLS and
SuperNode authentication on by default) with its ``flwr`` connection, the registration of an
agent's key, and the pre-installed students every edge agent must hold before its first run.

An agent with ``client-init = "pretrained"`` (the default) starts each run from the student
the ground trained for its role's architecture, which it looks up in its own
``SKYDISTILL_CACHE`` under a file name keyed by the run config's recipe (see
:mod:`common.preinstalled`). ``preinstall_students`` prepares the ground segment (teacher,
global student, pre-installed students; cached, so the ServerApp reuses them) and copies each
pre-installed student out.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from common.config import RunConfig
from common.errors import DataNotFoundError
from common.processes import FlowerError
from simulations.flower import CONNECTION, SuperLink, flwr, write_connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    home: Path
    host: str = "0.0.0.0"
    port: int = 8000
    certs: Path | None = None  # folder with ca.crt, server.pem, server.key
    insecure: bool = False
    node_auth: bool = True
    database: Path | None = None

    def superlink_args(self) -> tuple[str, ...]:
        args: list[str] = []
        if not self.insecure:
            if self.certs is None:
                raise FlowerError(
                    "no TLS material: pass --certs DIR (made by `skydistill certs DIR`) or "
                    "--insecure for a plain-HTTP test setup"
                )
            for name in ("ca.crt", "server.pem", "server.key"):
                if not (self.certs / name).is_file():
                    raise FlowerError(f"{self.certs / name} is missing: run `skydistill certs`")
            args += [
                "--ssl-ca-certfile", str((self.certs / "ca.crt").resolve()),
                "--ssl-certfile", str((self.certs / "server.pem").resolve()),
                "--ssl-keyfile", str((self.certs / "server.key").resolve()),
            ]  # fmt: skip
        if self.node_auth:
            args.append("--enable-supernode-auth")
        if self.database is not None:
            args += ["--database", str(self.database.resolve())]
        return tuple(args)


def deployment_superlink(opts: ServerOptions) -> SuperLink:
    """A SuperLink in deployment mode; with TLS the ``flwr`` connection trusts ``ca.crt``."""
    link = SuperLink(
        opts.home,
        port=opts.port,
        host=opts.host,
        simulation=False,
        insecure=opts.insecure,
        extra_args=opts.superlink_args(),
    )
    ca = None if opts.insecure or opts.certs is None else (opts.certs / "ca.crt").resolve()
    write_connection(opts.home, link.address, root_certificates=ca)
    return link


def register_agent(home: Path, public_key: Path, name: str | None = None) -> int:
    """Register an agent's public key with the SuperLink of ``home``'s connection."""
    args = ["supernode", "register", str(public_key.resolve()), CONNECTION]
    if name:
        args += ["--name", name]
    node_id = int(flwr(home, *args, timeout=60)["node-id"])
    log.info("registered %s as node %d", public_key, node_id)
    return node_id


@dataclass(frozen=True)
class PreinstalledFile:
    """One role's pre-installed student, copied out of the ground's cache."""

    role: str
    arch: str
    path: Path  # the copy in the output folder; an agent expects the same file name in its cache
    accuracy: float  # on the run's test split (or test-dir)


def agent_archs(cfg: RunConfig) -> dict[str, str]:
    """Each role of the run and the architecture of the pre-installed student its agents
    load; empty when agents load none (``client-init='scratch'``, or the FedAvg baseline,
    whose server sends the weights)."""
    if cfg.method != "fedkd" or cfg.client_init != "pretrained":
        return {}
    return {role: cfg.arch_of(role) for role in dict.fromkeys(cfg.role_cycle)}


def preinstall_students(
    cfg: RunConfig, out: Path, *, progress: bool = False
) -> list[PreinstalledFile]:
    """Prepare the ground segment for ``cfg`` and copy each role's pre-installed student
    from the ground's cache into ``out`` (one file per architecture)."""
    from common.model_cache import cache_path  # heavy imports (torch)
    from common.preinstalled import cache_entry
    from server.ground import prepare
    from server.preinstall import preinstall

    archs = agent_archs(cfg)
    if not archs:
        return []
    ground = prepare(cfg, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    copied: dict[str, Path] = {}
    for arch in dict.fromkeys(archs.values()):
        if arch not in ground.preinstalled_accuracy:  # a role the simulated clients lack
            ground.preinstalled_accuracy[arch] = preinstall(
                cfg, ground.fed, arch, ground.teacher_probs, progress=progress
            )
        name, entry = cache_entry(cfg, ground.fed, arch)
        source = cache_path(name, ground.fed, entry)
        if not source.is_file():  # prepare() just wrote it: only a concurrent clean-up
            raise DataNotFoundError(
                f"the pre-installed {arch} student is missing from the ground's cache "
                f"{source.parent} after preparing it: was the cache cleaned meanwhile? run "
                "skydistill preinstall again"
            )
        target = out / source.name
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        log.info("pre-installed %s student %s copied to %s", arch, source, target)
        copied[arch] = target
    return [
        PreinstalledFile(role, arch, copied[arch], ground.preinstalled_accuracy[arch])
        for role, arch in archs.items()
    ]
