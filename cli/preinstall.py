"""``skydistill preinstall``: build, at the ground segment, the student files that every edge
agent must hold before its first run.

This command reads the deployment's run-config TOML, has the ground segment prepared and each
role's pre-installed student copied into ``--out`` (``simulations.deployment``), and says where
each file goes on the agents.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cli.options import build
from common.config import SETTINGS, RunConfig
from common.config_parse import read_toml_values
from common.errors import ConfigError
from common.help_format import DefaultsHelpFormatter
from simulations.deployment import PreinstalledFile, agent_archs, preinstall_students

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_OUT = Path("preinstalled")
# Where the guide (deploy/README.md) and the systemd unit put an agent's SKYDISTILL_CACHE.
AGENT_CACHE = "/var/cache/skydistill"


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
        f"unset: the run config's data-dir, else {SETTINGS['data-dir'].empty}",
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
    values = read_toml_values(path)
    flag = {"data-dir": data_dir} if data_dir else {}
    try:
        return build(RunConfig(), values, {}, flag)
    except ConfigError as exc:
        raise ConfigError(f"run config {path}: {exc} (see README.md, Run config)") from exc


def _run(args: argparse.Namespace) -> int:
    cfg = read_run_config(args.run_config, args.data_dir)
    if agent_archs(cfg):
        lines = report(
            preinstall_students(cfg, args.out, progress=True), args.out, args.agent_cache
        )
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
