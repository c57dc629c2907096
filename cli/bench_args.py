"""What each ``skydistill bench`` command runs with: its flags merged with ``--set``.

Precedence: an explicit flag > ``--set`` > the command's defaults (``DISTILL_DEFAULTS`` ...
over ``bench_defaults()`` or ``RunConfig()``) > ``RunConfig``'s defaults. Each function is
pure (parsed arguments in, the benchmark's typed config out), so that the merge is tested
without running a benchmark.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cli import bench_flags as cmd
from cli.options import build, explicit, merge
from common.config import RunConfig
from common.errors import ConfigError
from simulations.bench.distill import DistillBench, bench_defaults
from simulations.bench.fleet import FleetBench, fleet_defaults
from simulations.bench.onboard import OnboardBench
from simulations.bench.robust import RobustBench, robust_defaults
from simulations.bench.scale import ScaleBench


def with_defaults(base: RunConfig, defaults: Mapping[str, Any]) -> RunConfig:
    """``base`` with a command's own defaults on top."""
    return RunConfig.from_mapping({**base.to_mapping(), **defaults})


def distill_bench(args: argparse.Namespace) -> DistillBench:
    cfg = merge(
        args,
        cmd.DISTILL_FLAGS,
        with_defaults(bench_defaults(), cmd.DISTILL_DEFAULTS),
        cmd.DISTILL_FIXED,
    )
    return DistillBench(
        clients=cfg.num_clients,
        alpha=cfg.alpha,
        rounds=cfg.num_rounds,
        seed=cfg.seed,
        test_dir=Path(cfg.test_dir) if cfg.test_dir else None,
        ground_gap=cfg.archive_gap,
        out=args.out,
        search_rounds=args.search_rounds,
        base=cfg,
    )


def robust_bench(args: argparse.Namespace) -> RobustBench:
    cfg = merge(
        args,
        cmd.ROBUST_FLAGS,
        with_defaults(robust_defaults(), cmd.ROBUST_DEFAULTS),
        cmd.ROBUST_FIXED,
    )
    if args.attackers >= cfg.num_clients:
        raise ConfigError(
            f"--attackers {args.attackers}: must be fewer than the {cfg.num_clients} clients"
        )
    return RobustBench(
        clients=cfg.num_clients,
        attackers=args.attackers,
        rounds=cfg.num_rounds,
        seed=cfg.seed,
        alpha=cfg.alpha,
        rule=args.rule,
        attack=cfg.attack,
        out=args.out,
        base=cfg,
    )


def onboard_bench(args: argparse.Namespace) -> OnboardBench:
    return OnboardBench(
        out=args.out,
        students=args.students,
        base=merge(args, cmd.ONBOARD_FLAGS, RunConfig()),
        runs=args.runs,
        warmup=args.warmup,
        batch_size=args.batch_size,
        throughput_seconds=args.throughput_seconds,
        test_limit=args.test_limit,
        calibration=args.calibration_tiles,
        threads=args.threads,
    )


def fleet_bench(args: argparse.Namespace) -> FleetBench:
    cfg = merge(
        args,
        cmd.FLEET_FLAGS,
        with_defaults(fleet_defaults(), cmd.FLEET_DEFAULTS),
        cmd.FLEET_FIXED,
    )
    return FleetBench(
        scenario=cfg.scenario,
        seed=cfg.seed,
        hours=args.hours,
        aware_hours=args.aware_hours,
        target=args.target,
        per_round=args.per_round,
        window_minutes=cfg.round_window_minutes,
        max_staleness=cfg.max_staleness,
        decay=cfg.staleness_decay,
        out=args.out,
        base=cfg,
    )


def scale_bench(args: argparse.Namespace) -> ScaleBench:
    """``--clients`` takes several fleet sizes; ``--set num-clients=N`` runs one."""
    values, sources = explicit(args, cmd.SCALE_FLAGS, cmd.SCALE_FIXED)
    sizes = values.pop("num-clients", None)
    defaults = with_defaults(RunConfig(), cmd.SCALE_DEFAULTS)
    cfg = build(defaults, values, sources)
    if sizes is None:
        clients = cmd.SCALE_CLIENTS
    elif isinstance(sizes, list):  # --clients N [N ...]: each one checked as num-clients
        for n in sizes:
            build(cfg, {"num-clients": n}, {"num-clients": f"--clients {n}"})
        clients = tuple(sizes)
    else:  # --set num-clients=N
        clients = (build(cfg, {"num-clients": sizes}, sources).num_clients,)
    return ScaleBench(
        clients=clients,
        per_round=args.per_round,
        rounds=cfg.num_rounds,
        shard_size=cfg.shard_size,
        reference_per_round=cfg.reference_per_round,
        seed=cfg.seed,
        out=args.out,
        work=args.work,
        base=cfg,
    )
