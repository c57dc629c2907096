"""``skydistill server``, ``skydistill register``, ``skydistill submit`` and ``skydistill
certs``: the ground side of a deployment on Flower's deployment engine.

``server`` starts a SuperLink (not in simulation mode) with TLS and SuperNode authentication
on by default, writes the ``flwr`` connection for it into ``$FLWR_HOME/config.toml`` and runs
until stopped. ``register`` adds an agent's public key to the SuperLink (``flwr supernode
register``). ``submit`` submits a run from its run-config TOML, or (``--resume``) continues one
whose server died from its checkpoint. ``certs`` makes the CA, the server certificate and the
agents' keys. The parsers and what they print; the deployment itself is
``simulations.deployment``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from common.help_format import DefaultsHelpFormatter
from server.certs import make_certs
from simulations.deployment import (
    ServerOptions,
    deployment_superlink,
    register_agent,
    submit_deployment_run,
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = DefaultsHelpFormatter
    p = sub.add_parser("server", help="start a SuperLink (deployment engine, TLS + node auth)",
                       description="Start a SuperLink (Flower's deployment engine) with TLS "
                       "and SuperNode authentication, write the `flwr` connection `skydistill` "
                       "into HOME/config.toml, and run until stopped (Ctrl-C or SIGTERM).",
                       formatter_class=fmt)  # fmt: skip
    p.add_argument("--home", type=Path, default=Path("flwr-home"), help="FLWR_HOME of the link")
    p.add_argument(
        "--host",
        default="0.0.0.0",
        help="address the SuperLink listens on (0.0.0.0: every interface; "
        "127.0.0.1: this machine only)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port of the SuperLink: agents (--superlink HOST:PORT) and `flwr` connect here",
    )
    p.add_argument("--certs", type=Path, help="folder made by `skydistill certs`")
    p.add_argument(
        "--database",
        type=Path,
        help="SQLite state (registered nodes, runs), kept across restarts: a "
        "restarted SuperLink knows its agents, which reconnect by themselves; "
        "unset: in memory, so after a restart every key must be registered again",
    )
    p.add_argument("--insecure", action="store_true", help="plain HTTP (test setups only)")
    p.add_argument("--no-node-auth", action="store_true", help="accept unregistered nodes")
    p.set_defaults(func=_run_server)

    r = sub.add_parser("register", help="register an agent's public key with the SuperLink",
                       formatter_class=fmt)  # fmt: skip
    r.add_argument("public_key", type=Path, help="the agent's KEY.pub (OpenSSH, EC P-384)")
    r.add_argument("--home", type=Path, default=Path("flwr-home"),
                   help="FLWR_HOME holding the connection `skydistill server` wrote")  # fmt: skip
    r.add_argument("--name", help="name shown by `flwr supernode ls`")
    r.set_defaults(func=_run_register)

    u = sub.add_parser(
        "submit",
        help="submit a run to the SuperLink, or resume one whose server died",
        description="Check the run config (a TOML file of [tool.flwr.app.config] keys) as the "
        "ServerApp will, then submit it with `flwr run` to the SuperLink of HOME's connection "
        "and print the run id. With --resume, continue the run whose checkpoint is in the run "
        "config's out-dir (run it where that folder is, at the ground): the ServerApp redoes "
        "only the round that was in flight; a run whose rounds are all done is not submitted.",
        formatter_class=fmt,
    )
    u.add_argument("run_config", type=Path, metavar="RUN.toml", help="the run's run config")
    u.add_argument("--home", type=Path, default=Path("flwr-home"),
                   help="FLWR_HOME holding the connection `skydistill server` wrote")  # fmt: skip
    u.add_argument("--app", type=Path, default=Path("."),
                   help="the Flower app folder (the checkout of the release the ground runs, "
                   "with its pyproject.toml); `flwr run` packs it for the agents")  # fmt: skip
    u.add_argument("--resume", action="store_true",
                   help="continue from out-dir/checkpoint.pt (same run config)")  # fmt: skip
    u.set_defaults(func=_run_submit)

    c = sub.add_parser("certs", help="make a CA, the SuperLink certificate and agent keys",
                       formatter_class=fmt)  # fmt: skip
    c.add_argument(
        "folder",
        type=Path,
        help="where ca.crt, server.pem, server.key and agents/ are written "
        "(existing files are kept)",
    )
    c.add_argument("--name", action="append", default=[], dest="names",
                   help="extra DNS name or IP of the SuperLink (repeatable)")  # fmt: skip
    c.add_argument("--agent", action="append", default=[], dest="agents",
                   help="make a key pair for this agent (repeatable)")  # fmt: skip
    c.set_defaults(func=_run_certs)


def _run_server(args: argparse.Namespace) -> int:
    opts = ServerOptions(
        home=args.home.resolve(),
        host=args.host,
        port=args.port,
        certs=args.certs,
        insecure=args.insecure,
        node_auth=not args.no_node_auth,
        database=args.database,
    )
    if opts.database is None:
        print(
            "skydistill: warning: no --database: registered agents and runs live in memory; "
            "after a restart every agent is refused until its key is registered again",
            file=sys.stderr,
        )
    with deployment_superlink(opts) as link:
        print(f"SuperLink on {link.address} (FLWR_HOME={opts.home}); Ctrl-C to stop")
        signal.pause()
    return 0


def _run_register(args: argparse.Namespace) -> int:
    node_id = register_agent(args.home.resolve(), args.public_key, args.name)
    print(f"registered {args.public_key} as node {node_id}")
    return 0


def _run_submit(args: argparse.Namespace) -> int:
    home = args.home.resolve()
    done = submit_deployment_run(home, args.app, args.run_config, resume=args.resume)
    if done.run_id is None:
        print(f"the run is complete: all {done.num_rounds} rounds are done, nothing to resume")
        return 0
    what = f"resuming after round {done.resumed_after} of" if args.resume else "new run of"
    print(f"run {done.run_id} submitted ({what} {done.num_rounds} rounds)")
    print(f"  status: FLWR_HOME={home} flwr ls skydistill --run-id {done.run_id}")
    print(f"  log:    FLWR_HOME={home} flwr log {done.run_id} skydistill --stream")
    return 0


def _run_certs(args: argparse.Namespace) -> int:
    m = make_certs(args.folder, args.names, args.agents)
    print(f"CA {m.ca}; server {m.server_cert} {m.server_key}; agents {m.folder / 'agents'}")
    return 0
