"""``skydistill bench ...``: benchmark commands that write JSON reports and plots."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cli import bench_flags as cmd
from cli.bench_args import distill_bench, fleet_bench, onboard_bench, robust_bench, scale_bench
from cli.options import add_mirror, add_set, ranged
from common.config import RunConfig
from common.config_rules import Range
from common.help_format import DefaultsHelpFormatter
from simulations.bench.settings import (
    DEFAULT_OUT,
    ROBUST_ATTACKS,
    ROBUST_RULES,
    DistillBench,
    FleetBench,
    OnboardBench,
    RobustBench,
    ScaleBench,
)

DEFAULT_DOCS = Path("docs/benchmarks.md")
SEED_HELP = "seed of the partition, sampling and models"
ALPHA_HELP = "Dirichlet label-skew concentration (0 = IID)"

_COUNT = ranged(int, Range(1))
_NON_NEGATIVE = ranged(int, Range(0))
_SECONDS = ranged(float, Range(0, low_open=True))


def _mirrors(
    p: argparse.ArgumentParser, flags: Mapping[str, str], base: RunConfig
) -> Callable[..., None]:
    """``mirror(flag, help, shown=None, **kw)``: add ``flag`` for its run-config key in
    ``flags``, showing the bench's default (``base``'s value, or ``shown``)."""
    defaults = base.to_mapping()

    def mirror(flag: str, help: str, shown: object = None, **kw: Any) -> None:
        key = flags[flag]
        add_mirror(p, flag, key, defaults[key] if shown is None else shown, help, **kw)

    return mirror


def _option(
    p: argparse.ArgumentParser, flag: str, kind: Callable[[str], Any], default: object, help: str
) -> None:
    p.add_argument(flag, type=kind, default=default, help=help)


def _common(p: argparse.ArgumentParser) -> None:
    _option(p, "--out", Path, DEFAULT_OUT, "report folder")
    _option(p, "--docs", Path, DEFAULT_DOCS, "benchmark page to regenerate")


def _distill(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = kinds.add_parser(
        "distill",
        help="teacher, centralised, tuned FedAvg and federated distillation side by side",
        description="On one partition and for the same rounds: (a) the teacher alone, (b) a "
        "centralised tiny student on all client data pooled, (c) Flower's FedAvg with the tiny "
        "student (optimiser, learning rate, batch-norm handling and local epochs chosen by a "
        "small search on the clients' held-out splits), (d) federated distillation with tiny "
        "students, (e) federated distillation with each role's own student, and a control: "
        "the global student of (d) on the same schedule without any client. Writes "
        "OUT/distill.json (a run with the same alpha, clients, rounds, seed and test set is "
        "replaced), OUT/distill-accuracy.png and OUT/distill-bytes.png.",
        formatter_class=DefaultsHelpFormatter,
    )
    d = DistillBench()
    mirror = _mirrors(p, cmd.DISTILL_FLAGS, d.base)
    mirror("--clients", "simulated clients", type=int)
    mirror("--alpha", ALPHA_HELP, type=float)
    mirror("--rounds", "federated rounds of every method", type=int)
    mirror("--seed", SEED_HELP, type=int)
    mirror(
        "--test-dir",
        "evaluate every model on this labelled folder (<Class>/<tile>) of the same classes",
        shown="the internal test split",
        type=Path,
    )
    mirror(
        "--ground-gap",
        "N:KEEP: N classes, chosen by the seed, keep only KEEP of their archive tiles (the rest "
        "go to the clients): the ground lacks what the fleet sees; the report gives every "
        "method's accuracy on those scarce classes",
        shown="no gap",
        metavar="N:KEEP",
    )
    _option(
        p,
        "--search-rounds",
        _NON_NEGATIVE,
        d.search_rounds,
        "rounds per FedAvg search point; 0: all --rounds, and the chosen point's search "
        "run is the reported FedAvg run",
    )
    _common(p)
    add_set(p, "codec=topk", "override a run-config key for the federated methods")
    p.set_defaults(func=_run, make_bench=distill_bench)


def _robust(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = kinds.add_parser(
        "robust",
        help="clean vs Byzantine-attacked federations: each attack under the mean, robust rules "
        "and the history rule",
        description="On one partition: a clean federation (plain mean), then, for each attack of "
        "--attacks, ATTACKERS Byzantine clients under each rule of --rules, and the no-client "
        "control. Writes OUT/robust.json and OUT/robust.png (docs/robustness.md).",
        formatter_class=DefaultsHelpFormatter,
    )
    d = RobustBench()
    mirror = _mirrors(r, cmd.ROBUST_FLAGS, d.base)
    mirror("--clients", "simulated clients", type=int)
    _option(r, "--attackers", _NON_NEGATIVE, d.attackers, "Byzantine clients among them")
    mirror(
        "--attack",
        "the attack of the report's first keys (attacked_mean, attacked_robust)",
        choices=ROBUST_ATTACKS,
    )
    r.add_argument(
        "--attacks",
        nargs="+",
        choices=ROBUST_ATTACKS,
        default=list(d.attacks),
        metavar="ATTACK",
        help=f"the attacks run under every rule ({', '.join(ROBUST_ATTACKS)})",
    )
    r.add_argument(
        "--rules",
        nargs="+",
        choices=ROBUST_RULES,
        default=list(d.rules),
        metavar="RULE",
        help=f"the rules each attack runs under, mean first ({', '.join(ROBUST_RULES)})",
    )
    r.add_argument(
        "--rule",
        choices=("trimmed-mean", "median", "history"),
        default=d.rule,
        help="the robust rule of the report's attacked_robust",
    )
    mirror("--attack-scale", "evidence each attacker claims, times its own", type=float)
    mirror("--rounds", "federated rounds of each run", type=int)
    mirror("--alpha", ALPHA_HELP, type=float)
    mirror("--ground-gap", "N:KEEP archive gap (empty: none)")
    mirror("--seed", SEED_HELP, type=int)
    _common(r)
    add_set(r, "client-statistics=0", "override a run-config key of every run")
    r.set_defaults(func=_run, make_bench=robust_bench)


def _onboard(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    o = kinds.add_parser(
        "onboard",
        help="students and teacher as deployable files: size, latency, throughput, accuracy",
        description="For each role's student (satellite tiny, drone small, ground-station "
        "medium; from --students DIR, else the pre-installed students of the run config) and "
        "the teacher: parameters, file size, single-tile latency (batch 1, median and p90 "
        "over --runs after --warmup) and batch throughput with --threads threads, and test "
        "accuracy, for torch, TorchScript, ONNX (onnxruntime) and int8 ONNX. Writes "
        "OUT/onboard.json and the exported files to OUT/onboard/.",
        formatter_class=DefaultsHelpFormatter,
    )
    d = OnboardBench()
    _option(
        o,
        "--students",
        Path,
        d.students,
        "folder of student files (default: the pre-installed students of the run config)",
    )
    _mirrors(o, cmd.ONBOARD_FLAGS, d.base)("--data-dir", "data root", shown=cmd.DATA_DIR)
    _option(o, "--runs", _COUNT, d.runs, "timed single-tile runs")
    _option(o, "--warmup", _NON_NEGATIVE, d.warmup, "untimed runs first")
    _option(
        o,
        "--batch-size",
        _COUNT,
        d.batch_size,
        "batch for throughput (not the training batch: that is --set batch-size)",
    )
    _option(
        o,
        "--throughput-seconds",
        ranged(float, Range(0)),
        d.throughput_seconds,
        "least time per batch",
    )
    _option(o, "--threads", _COUNT, d.threads, "CPU threads of every runtime")
    _option(
        o,
        "--test-limit",
        _COUNT,
        d.test_limit,
        "at most N test tiles (default: the whole test split)",
    )
    _option(o, "--calibration-tiles", _COUNT, d.calibration, "int8 calibration tiles")
    _common(o)
    add_set(o, "teacher-epochs=1")
    o.set_defaults(func=_run, make_bench=onboard_bench)


def _fleet(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = kinds.add_parser(
        "fleet",
        help="simulated hours to a target accuracy: contact-aware vs synchronous scheduling",
        description="Two federated-distillation runs on one fleet scenario and seed over the "
        "same simulated horizon: contact-aware (each round is a window of simulated time; only "
        "clients in contact get work; late replies are held, down-weighted by "
        "DECAY ** age and dropped beyond MAX_STALENESS rounds) and synchronous (every sampled "
        "client must receive and return before the next round). Writes OUT/fleet.json "
        "(accuracy against simulated hours, hours to TARGET) and OUT/fleet.png.",
        formatter_class=DefaultsHelpFormatter,
    )
    d = FleetBench()
    mirror = _mirrors(f, cmd.FLEET_FLAGS, d.base)
    mirror("--scenario", "scenario name (common/fleet/scenarios) or TOML path")
    mirror("--seed", SEED_HELP, type=int)
    _option(f, "--hours", _SECONDS, d.hours, "simulated horizon, synchronous")
    _option(f, "--aware-hours", _SECONDS, d.aware_hours, "simulated horizon, contact-aware")
    _option(
        f,
        "--target",
        ranged(float, Range(0, 1, low_open=True)),
        d.target,
        "target global-student accuracy",
    )
    _option(f, "--per-round", _COUNT, d.per_round, "clients given work per round, max")
    mirror("--window-minutes", "contact-aware round length", type=float)
    mirror("--max-staleness", "oldest accepted reply, rounds", type=int)
    mirror("--decay", "weight of a reply of age a: DECAY**a", type=float)
    _common(f)
    add_set(f, "server-epochs=2", "override a run-config key of both runs")
    f.set_defaults(func=_run, make_bench=fleet_bench)


def _scale(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = kinds.add_parser(
        "scale",
        help="1,000 and 10,000 virtual clients on Flower + Ray: round time, memory, overhead",
        description="For each --clients N: a simulation with N registered virtual clients "
        "(Flower num-supernodes), --per-round sampled per round, --rounds rounds, on the real "
        "RGB tiles; each client's shard is --shard-size tiles drawn from the client pool (with "
        "replacement across clients). Reports per-round wall seconds of the clients' phase "
        "(configure_train to aggregate_train), the peak summed RSS of the simulation's process "
        "tree (sampled every 0.5 s) and the overhead ratio: those seconds over the seconds of "
        "the very same train messages replayed through the ClientApp's train function in a "
        "plain loop in this process. Writes OUT/scale.json.",
        formatter_class=DefaultsHelpFormatter,
    )
    d = ScaleBench()
    mirror = _mirrors(s, cmd.SCALE_FLAGS, d.base)
    sizes = " ".join(str(n) for n in d.clients)
    mirror("--clients", "fleet sizes to run", shown=sizes, type=int, nargs="+")
    _option(s, "--per-round", _COUNT, d.per_round, "clients sampled per round")
    mirror("--rounds", "rounds of each run", type=int)
    mirror("--shard-size", "tiles per client shard", type=int)
    mirror(
        "--reference-per-round",
        "reference tiles (targets) per client round; with batch 64 it sets the steps",
        type=int,
    )
    mirror("--seed", SEED_HELP, type=int)
    mirror("--data-dir", "data root", shown=cmd.DATA_DIR)
    _option(s, "--work", Path, d.work, "run folders (default: OUT/scale-work)")
    _common(s)
    add_set(s, "client-epochs=2")
    s.set_defaults(func=_run, make_bench=scale_bench)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks (JSON reports in bench/out/, plots, docs/benchmarks.md)",
        description="Benchmarks. Each writes a JSON report and plots to --out and regenerates "
        "docs/benchmarks.md from the reports found there. Flags win over --set, and --set "
        "over the defaults; a key given both ways with different values is an error.",
    )
    kinds = bench.add_subparsers(dest="bench", required=True)
    for add in (_distill, _robust, _onboard, _fleet, _scale):
        add(kinds)


def _run(args: argparse.Namespace) -> int:
    from simulations.bench.commands import run_command  # the benchmarks' heavy imports

    print(run_command(args.make_bench(args), args.docs))  # the command's output
    return 0
