"""``skydistill agent``: the edge agent's options (the agent itself is :mod:`clients.agent`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from clients.agent import DEFAULT_RUNTIME_PORT, AgentOptions, run_agent
from clients.agent_checks import EXTRA_HELP, parse_node_config
from common.bands import DATASETS
from common.config import ROLES
from common.help_format import DefaultsHelpFormatter


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "agent",
        help="run the skydistill ClientApp on this edge node (through a Flower SuperNode)",
        description="Check the local data folder and TLS material, then start a Flower SuperNode "
        "(a child process, stopped with the agent) that joins a SuperLink and runs the "
        "skydistill ClientApp on that folder. TLS is required unless --insecure.",
        formatter_class=DefaultsHelpFormatter,
    )
    # fmt: off
    p.add_argument("--role", required=True, choices=ROLES,
                   help="platform of this node; the run config picks its student for the role "
                   "(by default satellite: tiny, drone: small, ground-station: medium)")
    p.add_argument("--data-dir", type=Path, required=True,
                   help="the node's own labelled imagery: one sub-folder per class, "
                   "<Class>/<tile> (64 x 64 px tiles of --dataset)")
    p.add_argument("--superlink", required=True, metavar="HOST:PORT", help="SuperLink address")
    p.add_argument("--root-certificates", type=Path, metavar="CA.crt",
                   help="PEM CA certificate that signed the SuperLink's (required unless "
                   "--insecure)")
    p.add_argument("--auth-key", type=Path, metavar="KEY",
                   help="this node's private key (OpenSSH, EC P-384) for node authentication")
    p.add_argument("--health-address", metavar="HOST:PORT",
                   help="serve the SuperNode's gRPC health service here")
    p.add_argument("--insecure", action="store_true", help="plain HTTP, no TLS (tests only)")
    p.add_argument("--name", help="stable node name (the partition id and the state folder "
                   "derive from it); unset: HOSTNAME-ROLE")
    p.add_argument("--dataset", choices=tuple(DATASETS), default="rgb",
                   help="band layout of the node's tiles, the same as the run's: rgb = 3-band "
                   "uint8 JPEG (<Class>/*.jpg), ms = 13-band uint16 GeoTIFF (<Class>/*.tif)")
    p.add_argument("--state-dir", type=Path,
                   help="students and Flower state of this node; unset: "
                   "~/.local/state/skydistill-agent/NAME")
    p.add_argument("--runtime-port", type=int, default=DEFAULT_RUNTIME_PORT,
                   help="local port of the SuperNode's ClientApp runtime API")
    p.add_argument("--max-wait-time", type=float, metavar="SECONDS",
                   help="stop the SuperNode and exit 2 if it has not joined the SuperLink "
                   "SECONDS after it started; unset: wait indefinitely")
    p.add_argument("--reconnect-timeout", type=float, metavar="SECONDS",
                   help="once joined, give up (the SuperNode exits, and so does the agent) "
                   "after SECONDS of failing to reach a lost SuperLink; unset: keep retrying, "
                   "at most 20 s apart, so agents carry on by themselves when a restarted "
                   "SuperLink is back (Flower's --max-wait-time)")
    p.add_argument("--node-config", action="append", default=[], metavar="KEY=VALUE",
                   help=f"extra node config for the ClientApp, repeatable or space-separated "
                   f"({EXTRA_HELP}); role, data-dir, node-name, partition-id and state-dir come "
                   "from the options above")
    # fmt: on
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return run_agent(options_from(args))


def options_from(args: argparse.Namespace) -> AgentOptions:
    return AgentOptions(
        role=args.role,
        data_dir=args.data_dir,
        superlink=args.superlink,
        root_certificates=args.root_certificates,
        auth_key=args.auth_key,
        health_address=args.health_address,
        insecure=args.insecure,
        name=args.name or "",
        dataset=args.dataset,
        state_dir=args.state_dir,
        runtime_port=args.runtime_port,
        max_wait_time=args.max_wait_time,
        reconnect_timeout=args.reconnect_timeout,
        extra_config=tuple(parse_node_config(args.node_config).items()),
    )


def agent_argv(opts: AgentOptions) -> Sequence[str]:
    """The ``skydistill agent`` arguments for ``opts`` (tests, unit files)."""
    argv = ["agent", "--role", opts.role, "--data-dir", str(opts.data_dir),
            "--superlink", opts.superlink, "--name", opts.node_name,
            "--dataset", opts.dataset, "--runtime-port", str(opts.runtime_port)]  # fmt: skip
    if opts.insecure:
        argv.append("--insecure")
    for flag, value in (
        ("--root-certificates", opts.root_certificates),
        ("--auth-key", opts.auth_key),
        ("--health-address", opts.health_address),
        ("--state-dir", opts.state_dir),
        ("--max-wait-time", opts.max_wait_time),
        ("--reconnect-timeout", opts.reconnect_timeout),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for key, value in opts.extra_config:
        argv += ["--node-config", f"{key}={value}"]
    return argv
