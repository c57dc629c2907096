"""The ground side of a deployment on Flower's deployment engine: the SuperLink (TLS and
SuperNode authentication on by default) with its ``flwr`` connection, the registration of an
agent's key, submitting a run (a new one, or the resumption of one whose server died), and the
pre-installed students every edge agent must hold before its first run.

A SuperLink with a ``--database`` keeps its registered nodes across a restart, and the agents'
SuperNodes retry until it is back, so after a crash of the SuperLink or the ServerApp the
operator restarts the SuperLink and submits the run again with ``resume``: the ServerApp
continues from ``out-dir/checkpoint.pt`` and redoes only the round that was in flight.

An agent with ``client-init = "pretrained"`` (the default) starts each run from the student
the ground trained for its role's architecture, which it looks up in its own
``SKYDISTILL_CACHE`` under a file name keyed by the run config's recipe (see
:mod:`common.preinstalled`). ``preinstall_students`` prepares the ground segment (teacher,
global student, pre-installed students; cached, so the ServerApp reuses them) and copies each
pre-installed student out.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import RunConfig
from common.config_parse import read_toml_values
from common.errors import ConfigError, DataNotFoundError
from common.processes import FlowerError
from simulations.flower import CONNECTION, SuperLink, flwr, submit_run, write_connection

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
class Submission:
    """What :func:`submit_deployment_run` did."""

    run_id: int | None  # None: nothing was submitted (the run to resume is complete)
    num_rounds: int
    resumed_after: int = 0  # rounds in the checkpoint the run continues from (0: a new run)


def submit_deployment_run(
    home: Path, app_dir: Path, run_config: Path, *, resume: bool = False
) -> Submission:
    """Submit the run of the run-config TOML ``run_config`` to the SuperLink of ``home``'s
    connection (``flwr run``), its keys checked first as the ServerApp will check them.

    ``resume``: continue the run whose checkpoint is in the run config's ``out-dir`` (this
    machine's, so call it where the ServerApp writes, at the ground): the same keys plus
    ``resume = 1``; nothing is submitted when the checkpoint holds every round already. The
    ServerApp refuses a checkpoint written with other settings (the message names them)."""
    from server.checkpoint import CHECKPOINT_FILE  # heavy imports (torch)

    values = read_toml_values(run_config)
    cfg = RunConfig().with_values(values)
    if not (app_dir / "pyproject.toml").is_file():
        raise ConfigError(
            f"{app_dir} is not a Flower app folder (no pyproject.toml): pass --app, the "
            "checkout of the release the ground runs (e.g. /opt/skydistill)"
        )
    done = _checkpoint_rounds(cfg) if resume else 0
    if resume and done >= cfg.num_rounds:
        log.info("%s: all %d rounds are done, nothing to resume", cfg.out_dir, cfg.num_rounds)
        return Submission(None, cfg.num_rounds, done)
    if not resume and cfg.out_dir and (Path(cfg.out_dir) / CHECKPOINT_FILE).is_file():
        log.warning(
            "%s holds the checkpoint of an earlier run: this new run starts afresh and "
            "overwrites it (to continue that run instead, submit it with --resume)",
            cfg.out_dir,
        )
    with tempfile.TemporaryDirectory(prefix="skydistill-submit-") as tmp:
        path = Path(tmp) / "run.toml"
        path.write_text(toml_text({**values, "resume": int(resume)}))
        run_id = submit_run(home, app_dir.resolve(), path, {})
    log.info("submitted run %d (%s)", run_id, f"after round {done}" if resume else "new")
    return Submission(run_id, cfg.num_rounds, done)


def _checkpoint_rounds(cfg: RunConfig) -> int:
    """The rounds completed in the checkpoint of ``cfg``'s out-dir (with ``--resume``)."""
    if not cfg.out_dir:
        raise ConfigError(
            "--resume needs the run config's out-dir: the folder where the ServerApp writes "
            "checkpoint.pt after every round"
        )
    from server.checkpoint import CHECKPOINT_FILE, load_checkpoint

    checkpoint = load_checkpoint(Path(cfg.out_dir))
    if checkpoint is None:
        raise ConfigError(
            f"nothing to resume in {cfg.out_dir}: no {CHECKPOINT_FILE} (the ServerApp writes it "
            "after every completed round; run this on the ground, where out-dir is, or submit "
            "a new run without --resume)"
        )
    return checkpoint.round


def toml_text(values: Mapping[str, Any]) -> str:
    """A flat run-config TOML file of ``values`` (strings, numbers and booleans)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = json.dumps(str(value))
        lines.append(f"{key} = {text}")
    out = "\n".join(lines) + "\n"
    tomllib.loads(out)  # what flwr reads back
    return out


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
