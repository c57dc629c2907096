"""The ``skydistill`` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from clients import agent
from common.config import RunConfig
from common.errors import SkydistillError
from simulations import bench, deploy, fetch, onboard_cli

log = logging.getLogger("skydistill")


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = RunConfig()
    p = sub.add_parser(
        "simulate",
        help="run a federated-distillation simulation on Flower's simulation engine (Ray)",
        description="Run a federated-distillation simulation on Flower's simulation engine "
        "(Ray backend). Writes OUT/report.json, OUT/accuracy.png and OUT/run.log.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--clients", type=int, default=d.num_clients, help="number of simulated clients")
    p.add_argument("--rounds", type=int, default=d.num_rounds, help="federated rounds")
    p.add_argument(
        "--alpha",
        type=float,
        default=d.alpha,
        help="Dirichlet concentration of the client label split (0 = IID)",
    )
    p.add_argument("--dataset", choices=("rgb", "ms"), default=d.dataset)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", type=Path, default=Path("runs/simulate"), help="output folder")
    p.add_argument(
        "--data-dir",
        default=None,
        help="data root holding eurosat-rgb/ and eurosat-ms/ (default: $SKYDISTILL_DATA or "
        "../shared/data)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other run-config key of pyproject.toml, e.g. --set teacher-mix=0.3",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the run in DIR from its last completed round (after a crash); the "
        "run config is read from DIR/run-config.toml and other options are ignored",
    )
    p.add_argument(
        "--scenario",
        default=None,
        metavar="NAME|TOML",
        help="fleet scenario (small, leo50, fleet10k or a TOML path): rounds follow its contact "
        "windows and --clients becomes the scenario's client count (docs/fleets.md)",
    )
    p.add_argument(
        "--schedule",
        choices=("contact-aware", "synchronous"),
        default=d.schedule,
        help="with --scenario: work only for clients in contact in each round's window, or "
        "wait for every sampled client to receive and return",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="auto|HOST:PORT",
        help="run the virtual clients on this existing Ray cluster (started with `ray start "
        "--head`; `auto`: the cluster last started on this machine) instead of a private Ray "
        "instance; the cluster's own CPUs size the actor pool (see docs/scale.md)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_simulate)


def parse_sets(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SkydistillError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _run_simulate(args: argparse.Namespace) -> int:
    from simulations.simulate import resume_config, simulate  # heavy imports: only here

    if args.resume is not None:
        report = simulate(
            resume_config(args.resume),
            args.resume,
            progress=not args.no_progress,
            ray_address=args.ray_address,
        )
        _print_final(report, args.resume)
        return 0

    values: dict[str, object] = {
        **RunConfig().to_mapping(),
        **parse_sets(args.set),
        "num-clients": args.clients,
        "num-rounds": args.rounds,
        "alpha": args.alpha,
        "dataset": args.dataset,
        "seed": args.seed,
    }
    if args.data_dir:
        values["data-dir"] = args.data_dir
    if args.scenario:
        from simulations.scenario import load_scenario

        scenario = load_scenario(args.scenario)
        values.update(
            {
                "scenario": str(scenario.path),  # absolute: the SuperLink runs elsewhere
                "num-clients": scenario.num_clients,
                "schedule": args.schedule,
            }
        )
    cfg = RunConfig.from_mapping(values)
    report = simulate(cfg, args.out, progress=not args.no_progress, ray_address=args.ray_address)
    _print_final(report, args.out)
    return 0


def _print_final(report: dict[str, Any], out: Path) -> None:
    final = report["final"]
    print(
        f"global-student accuracy {final['global_accuracy']:.4f} after "
        f"{final['rounds_completed']} rounds (teacher {final['teacher_accuracy']:.4f}), "
        f"{final['seconds']:.0f} s of rounds; report: {out / 'report.json'}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skydistill",
        description="Federated knowledge distillation for Earth-observation fleets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _simulate_parser(sub)
    onboard_cli.add_scene_parser(fetch.add_parser(sub))
    bench.add_parser(sub)
    onboard_cli.add_parsers(sub)
    agent.add_parser(sub)
    deploy.add_parsers(sub)
    return parser


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
