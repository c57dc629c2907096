"""What each ``skydistill bench`` command runs with: its flags merged with ``--set``.

Precedence: an explicit flag > ``--set`` > the bench's run config (``distill_defaults()`` ...
in ``simulations/bench/settings.py``) > ``RunConfig``'s defaults. Each function is pure
(parsed arguments in, the benchmark's typed config out), so that the merge is tested without
running a benchmark.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from cli import bench_flags as cmd
from cli.options import build, explicit, merge
from common.config import RunConfig
from common.errors import ConfigError
from simulations.bench.settings import (
    DistillBench,
    FleetBench,
    OnboardBench,
    RobustBench,
    ScaleBench,
    distill_defaults,
    fleet_defaults,
    robust_defaults,
    scale_defaults,
)


def distill_bench(args: argparse.Namespace) -> DistillBench:
    base = merge(args, cmd.DISTILL_FLAGS, distill_defaults(), cmd.DISTILL_FIXED)
    return DistillBench(base=base, out=args.out, search_rounds=args.search_rounds)


def robust_bench(args: argparse.Namespace) -> RobustBench:
    base = merge(args, cmd.ROBUST_FLAGS, robust_defaults(), cmd.ROBUST_FIXED)
    if args.attackers >= base.num_clients:
        raise ConfigError(
            f"--attackers {args.attackers}: must be fewer than the {base.num_clients} clients"
        )
    return RobustBench(
        base=base,
        attackers=args.attackers,
        rule=args.rule,
        out=args.out,
        attacks=tuple(args.attacks),
        rules=tuple(args.rules),
    )


def onboard_bench(args: argparse.Namespace) -> OnboardBench:
    return OnboardBench(
        base=merge(args, cmd.ONBOARD_FLAGS, RunConfig()),
        out=args.out,
        students=args.students,
        runs=args.runs,
        warmup=args.warmup,
        batch_size=args.batch_size,
        throughput_seconds=args.throughput_seconds,
        test_limit=args.test_limit,
        calibration=args.calibration_tiles,
        threads=args.threads,
    )


def fleet_bench(args: argparse.Namespace) -> FleetBench:
    return FleetBench(
        base=merge(args, cmd.FLEET_FLAGS, fleet_defaults(), cmd.FLEET_FIXED),
        hours=args.hours,
        aware_hours=args.aware_hours,
        target=args.target,
        per_round=args.per_round,
        out=args.out,
    )


def scale_bench(args: argparse.Namespace) -> ScaleBench:
    """``--clients`` takes several fleet sizes; ``--set num-clients=N`` runs one."""
    values, sources = explicit(args, cmd.SCALE_FLAGS, cmd.SCALE_FIXED)
    sizes = values.pop("num-clients", None)
    base = build(scale_defaults(), values, sources)
    bench = ScaleBench(base=base, per_round=args.per_round, out=args.out, work=args.work)
    if sizes is None:  # the bench's own sweep
        return bench
    if isinstance(sizes, list):  # --clients N [N ...]: each one checked as num-clients
        for n in sizes:
            build(base, {"num-clients": n}, {"num-clients": f"--clients {n}"})
        return replace(bench, clients=tuple(sizes))
    # --set num-clients=N
    return replace(bench, clients=(build(base, {"num-clients": sizes}, sources).num_clients,))
