"""``skydistill simulate``: a federated-distillation run on Flower's simulation engine (Ray).

Its parser, the run config it runs with (flags > ``--set`` > ``RunConfig``'s defaults) and
what it prints; the run itself is ``simulations.simulate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.options import add_mirror, add_set, build, explicit, given_flags
from common import keys
from common.config import RunConfig
from common.errors import ConfigError
from common.help_format import DefaultsHelpFormatter

# Flags of ``simulate`` that mirror a run-config key (``--set KEY=VALUE`` works as well).
SIMULATE_FLAGS = {
    "--clients": "num-clients",
    "--rounds": "num-rounds",
    "--alpha": "alpha",
    "--dataset": "dataset",
    "--seed": "seed",
    "--data-dir": "data-dir",
    "--scenario": "scenario",
    "--schedule": "schedule",
}
# Keys simulate sets itself: a --set of them would be lost.
SIMULATE_FIXED = {
    "out-dir": "simulate writes to --out DIR",
    "resume": "continue a run with --resume DIR",
}
DEFAULT_OUT = Path("runs/simulate")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a federated-distillation simulation on Flower's simulation engine (Ray)",
        description="Run a federated-distillation simulation on Flower's simulation engine "
        "(Ray backend). Writes OUT/report.json (per-round and final results), "
        "OUT/accuracy.png (accuracy per round), OUT/run.log (the federation's log, as "
        "streamed by flwr log) and OUT/server.log (the ServerApp's own lines). A flag given "
        "explicitly wins over --set, and --set over the defaults; a key given both ways with "
        "different values is an error.",
        formatter_class=DefaultsHelpFormatter,
    )
    for flag in ("--clients", "--rounds", "--alpha", "--dataset", "--seed"):
        add_mirror(p, flag, SIMULATE_FLAGS[flag])
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default: {DEFAULT_OUT})")
    add_mirror(p, "--data-dir", "data-dir")
    add_set(p, "teacher-mix=0.3")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the run in DIR from its last completed round (after a crash); the "
        "run config is read from DIR/run-config.toml, so run-config flags, --set and --out "
        "are refused; a run that completed all its rounds is reported, not rerun "
        "(default: start a new run in --out)",
    )
    add_mirror(p, "--scenario", "scenario", metavar="NAME|TOML")
    add_mirror(p, "--schedule", "schedule")
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="auto|HOST:PORT",
        help="run the virtual clients on this existing Ray cluster (started with `ray start "
        "--head`; `auto`: the cluster last started on this machine) instead of a private Ray "
        "instance; the cluster's own CPUs size the actor pool (see docs/scale.md) "
        "(default: a private Ray instance)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run)


def simulate_config(args: argparse.Namespace) -> RunConfig:
    """The run config ``skydistill simulate`` runs with: flags > --set > RunConfig defaults;
    a scenario sets the client count (an explicit different count is an error)."""
    values, sources = explicit(args, SIMULATE_FLAGS, SIMULATE_FIXED)
    cfg = build(RunConfig(), values, sources)
    if not cfg.scenario:
        return cfg
    from common.fleet.scenario import load_scenario

    scenario = load_scenario(cfg.scenario)
    if "num-clients" in values and cfg.num_clients != scenario.num_clients:
        raise ConfigError(
            f"{sources['num-clients']}: scenario {cfg.scenario} has {scenario.num_clients} "
            "clients and sets num-clients itself; drop the client count"
        )
    extra = {"scenario": str(scenario.path), "num-clients": scenario.num_clients}
    return build(cfg, {}, sources, extra)  # absolute: the SuperLink runs elsewhere


def _refuse_options_with_resume(args: argparse.Namespace) -> None:
    given = given_flags(args, SIMULATE_FLAGS)
    given += ["--set"] * bool(args.set) + ["--out"] * (args.out is not None)
    if given:
        raise ConfigError(
            f"--resume {args.resume} reads the run config from {args.resume}/run-config.toml: "
            f"drop {', '.join(given)} (to change settings, start a new run in another folder)"
        )


def _run(args: argparse.Namespace) -> int:
    from simulations.simulate import finished_report, resume_config, simulate  # heavy imports

    if args.resume is not None:
        _refuse_options_with_resume(args)
        cfg = resume_config(args.resume)
        done = finished_report(args.resume, cfg)
        if done is not None:
            print(
                f"the run in {args.resume} is complete: all {cfg.num_rounds} rounds are done, "
                "nothing to resume"
            )
            _print_final(done, args.resume)
            return 0
        report = simulate(
            cfg, args.resume, progress=not args.no_progress, ray_address=args.ray_address
        )
        _print_final(report, args.resume)
        return 0

    cfg = simulate_config(args)
    out = args.out or DEFAULT_OUT
    report = simulate(cfg, out, progress=not args.no_progress, ray_address=args.ray_address)
    _print_final(report, out)
    return 0


def _print_final(report: dict[str, Any], out: Path) -> None:
    final = report["final"]
    teacher = final.get("teacher_accuracy")  # null when the teacher is not refined
    print(
        f"global-student accuracy {_fraction(final.get('global_accuracy'))} after "
        f"{final['rounds_completed']} rounds"
        + (f" (teacher {teacher:.4f})" if teacher is not None else "")
        + f", {final['seconds']:.0f} s of rounds; report: {out / 'report.json'}"
    )
    run = report.get("phase_seconds")
    if isinstance(run, dict) and run:
        print(f"where the run's time went: {_seconds(run)}")
    rounds = [r.get("phase_seconds") for r in report.get("rounds", [])]
    if rounds and all(isinstance(r, dict) and r for r in rounds):
        print(f"a round on average: {_seconds(mean_phases(rounds), digits=2)}")


def mean_phases(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each phase's mean over ``rounds`` (a phase a round lacks counts 0 there, so the means
    add up to the mean total), in the order the phases first appear."""
    order = list(dict.fromkeys(k for r in rounds for k in r))
    last = [k for k in (keys.PHASE_OTHER, keys.PHASE_TOTAL) if k in order]  # they stay last
    order = [k for k in order if k not in last] + last
    return {k: sum(float(r.get(k, 0.0)) for r in rounds) / len(rounds) for k in order}


def _seconds(phases: dict[str, Any], digits: int = 1) -> str:
    return ", ".join(
        f"{k} {v:.{digits}f} s" for k, v in phases.items() if isinstance(v, int | float)
    )


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
