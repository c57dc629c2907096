"""The ``skydistill`` command line: the top-level parser, one command group per module."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from cli import agent, bench, data, deploy, onboard, preinstall, simulate
from common.errors import SkydistillError
from common.help_format import use_everywhere

log = logging.getLogger("skydistill")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skydistill",
        description="Federated knowledge distillation for Earth-observation fleets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    simulate.add_parser(sub)
    onboard.add_scene_parser(data.add_parser(sub))
    bench.add_parser(sub)
    onboard.add_parsers(sub)
    agent.add_parser(sub)
    deploy.add_parsers(sub)
    preinstall.add_parser(sub)
    return use_everywhere(parser)  # one --help style, also for parsers made elsewhere


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so that started SuperLinks are stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Also when started in the background by a shell that ignores SIGINT for its children.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except SkydistillError as exc:
        print(f"skydistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skydistill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
