"""``skydistill preinstall``: build, at the ground segment, the student files that every edge
agent must hold before its first run.

An agent with ``client-init = "pretrained"`` (the default) starts each run from the student
the ground trained for its role's architecture, which it looks up in its own
``SKYDISTILL_CACHE`` under a file name keyed by the run config's recipe (see
:mod:`common.preinstalled`). This command reads the deployment's run-config TOML, prepares the
ground segment (teacher, global student, pre-installed students; cached, so the ServerApp
reuses them), copies each pre-installed student into ``--out`` and says where it goes.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.config import RunConfig
from common.errors import ConfigError, DataNotFoundError
from common.help_format import DefaultsHelpFormatter

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("preinstalled")
# Where the guide (deploy/README.md) and the systemd unit put an agent's SKYDISTILL_CACHE.
AGENT_CACHE = "/var/cache/skydistill"


@dataclass(frozen=True)
class PreinstalledFile:
    """One role's pre-installed student, copied out of the ground's cache."""

    role: str
    arch: str
    path: Path  # the copy in --out; an agent expects the same file name in its cache
    accuracy: float  # on the run's test split (or test-dir)


def add_parser(sub: Sub) -> None:
    p = sub.add_parser(
        "preinstall",
        help="build the pre-installed students that edge agents start from (at the ground)",
        description="Read the deployment's run config (a TOML file of [tool.flwr.app.config] "
        "keys, the one passed to `flwr run --run-config`), prepare the ground segment with it "
        "(train or find cached the teacher, the global student and each role's pre-installed "
        "student) and copy each pre-installed student into --out. An agent of that role needs "
        "the file, under the same name, in its SKYDISTILL_CACHE folder before the first run; "
        "without it every round it is sampled fails with 'no pre-installed ... student'. "
        "Rebuild and copy again after any change of the run config's recipe (seed, epochs, "
        "learning rate, batch size, temperature, data split) or of the torch version.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument(
        "--run-config",
        type=Path,
        required=True,
        metavar="FILE",
        help="run-config TOML of the deployment (e.g. run.toml of deploy/README.md)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="the ground's copy of the public archive (holding eurosat-rgb/ or eurosat-ms/); "
        "unset: the run config's data-dir, else $SKYDISTILL_DATA or ../shared/data",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="folder the student files are copied to",
    )
    p.add_argument(
        "--agent-cache",
        default=AGENT_CACHE,
        metavar="DIR",
        help="the agents' SKYDISTILL_CACHE, for the copy commands printed",
    )
    p.set_defaults(func=_run)


def read_run_config(path: Path, data_dir: str | None = None) -> RunConfig:
    """The run config in the TOML file ``path``; ``data_dir`` replaces its ``data-dir``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the run config {path} ({exc.strerror or exc}): pass --run-config "
            "FILE, the TOML file of run-config keys of the deployment"
        ) from exc
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"run config {path} is not valid TOML ({exc}): write one `key = value` per line, "
            'e.g. num-rounds = 10 or data-dir = "/data/public"'
        ) from exc
    tables = sorted(k for k, v in values.items() if isinstance(v, dict))
    if tables:
        raise ConfigError(
            f"run config {path} has tables ({', '.join(tables)}): a run config is a flat file "
            "of [tool.flwr.app.config] keys (num-rounds = 10, seed = 42, ...), not a pyproject"
        )
    if data_dir:
        values["data-dir"] = data_dir
    try:
        return RunConfig.from_mapping(values)
    except ConfigError as exc:
        raise ConfigError(f"run config {path}: {exc} (see README.md, Run config)") from exc


def agent_archs(cfg: RunConfig) -> dict[str, str]:
    """Each role of the run and the architecture of the pre-installed student its agents
    load; empty when agents load none (``client-init='scratch'``, or the FedAvg baseline,
    whose server sends the weights)."""
    if cfg.method != "fedkd" or cfg.client_init != "pretrained":
        return {}
    return {role: cfg.arch_of(role) for role in dict.fromkeys(cfg.role_cycle)}


def build(cfg: RunConfig, out: Path, *, progress: bool = False) -> list[PreinstalledFile]:
    """Prepare the ground segment for ``cfg`` and copy each role's pre-installed student
    from the ground's cache into ``out`` (one file per architecture)."""
    from common.model_cache import cache_path  # heavy imports (torch)
    from common.preinstalled import cache_name, recipe
    from server.ground import prepare

    archs = agent_archs(cfg)
    if not archs:
        return []
    ground = prepare(cfg, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    copied: dict[str, Path] = {}
    for arch in dict.fromkeys(archs.values()):
        source = cache_path(cache_name(arch), ground.fed, recipe(cfg, arch))
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


def _run(args: argparse.Namespace) -> int:
    cfg = read_run_config(args.run_config, args.data_dir)
    if agent_archs(cfg):
        lines = report(build(cfg, args.out, progress=True), args.out, args.agent_cache)
    else:
        why = (
            "client-init = 'scratch': agents start from a fresh student"
            if cfg.method == "fedkd"
            else "method = 'fedavg': the server sends the weights every round"
        )
        lines = [f"{args.run_config}: agents load no pre-installed student ({why}); nothing built"]
    print("\n".join(lines))
    return 0


def report(files: list[PreinstalledFile], out: Path, agent_cache: str) -> list[str]:
    """What ``skydistill preinstall`` prints: per role, the file, its architecture and test
    accuracy, where an agent expects it and the command that copies it there."""
    cache = agent_cache.rstrip("/") or "/"
    lines = [f"pre-installed students in {out}/ (one per architecture):"]
    for f in files:
        lines += [
            f"  {f.role}: {f.path} ({f.arch} student, test accuracy {f.accuracy:.4f})",
            f"    an agent of role {f.role} loads it from its SKYDISTILL_CACHE, same file name "
            f"({cache}/{f.path.name})",
            f"    copy: scp {f.path} NODE:{cache}/   # NODE: each {f.role} agent's host",
        ]
    lines.append(
        "An agent without its file still joins, but fails every round it is sampled; rebuild "
        "and copy again after a change of the run config's recipe or of torch."
    )
    return lines
