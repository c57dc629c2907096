"""``skydistill bench ...``: benchmark commands that write JSON reports and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = Path("bench/out")
DEFAULT_DOCS = Path("docs/benchmarks.md")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks (JSON reports in bench/out/, plots, docs/benchmarks.md)",
        description="Benchmarks. Each writes a JSON report and plots to --out and regenerates "
        "docs/benchmarks.md from the reports found there.",
    )
    kinds = bench.add_subparsers(dest="bench", required=True)
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
        "replaced), "
        "OUT/distill-accuracy.png and OUT/distill-bytes.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--clients", type=int, default=100, help="simulated clients")
    p.add_argument("--alpha", type=float, default=0.1, help="Dirichlet label-skew concentration")
    p.add_argument("--rounds", type=int, default=30, help="federated rounds of every method")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--test-dir",
        type=Path,
        default=None,
        help="evaluate every model on this labelled folder (<Class>/<tile>) of the same "
        "classes instead of the internal test split",
    )
    p.add_argument(
        "--search-rounds",
        type=int,
        default=0,
        help="rounds per FedAvg search point; 0 (default): all --rounds, and the chosen "
        "point's search run is the reported FedAvg run",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    p.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="benchmark page to regenerate")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-config key for the federated methods, e.g. --set codec=topk",
    )
    p.set_defaults(func=_run_distill)

    r = kinds.add_parser(
        "robust",
        help="clean vs Byzantine-attacked federations with the plain mean and a robust rule",
        description="Three federated-distillation runs on one partition: clean (plain mean), "
        "with ATTACKERS Byzantine clients and the plain mean, and with them and a robust rule. "
        "Writes OUT/robust.json and OUT/robust.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    r.add_argument("--clients", type=int, default=100)
    r.add_argument("--attackers", type=int, default=20, help="Byzantine clients among them")
    r.add_argument("--attack", choices=("random", "inverted", "constant", "mixed"), default="mixed")
    r.add_argument("--rule", choices=("trimmed-mean", "median"), default="trimmed-mean")
    r.add_argument("--rounds", type=int, default=10)
    r.add_argument("--alpha", type=float, default=0.5)
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    r.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="benchmark page to regenerate")
    r.set_defaults(func=_run_robust)

    o = kinds.add_parser(
        "onboard",
        help="students and teacher as deployable files: size, latency, throughput, accuracy",
        description="For each role's student (satellite tiny, drone small, ground-station "
        "medium; from --students DIR, else the pre-installed students of the run config) and "
        "the teacher: parameters, file size, single-tile latency (batch 1, median and p90 "
        "over --runs after --warmup) and batch throughput with --threads threads, and test "
        "accuracy, for torch, TorchScript, ONNX (onnxruntime) and int8 ONNX. Writes "
        "OUT/onboard.json and the exported files to OUT/onboard/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    o.add_argument("--students", type=Path, default=None, help="folder of student files")
    o.add_argument("--data-dir", default=None, help="data root (default: $SKYDISTILL_DATA)")
    o.add_argument("--runs", type=int, default=200, help="timed single-tile runs")
    o.add_argument("--warmup", type=int, default=20, help="untimed runs first")
    o.add_argument("--batch-size", type=int, default=256, help="batch for throughput")
    o.add_argument("--throughput-seconds", type=float, default=2.0, help="least time per batch")
    o.add_argument("--threads", type=int, default=1, help="CPU threads of every runtime")
    o.add_argument("--test-limit", type=int, default=None, help="at most N test tiles")
    o.add_argument("--calibration-tiles", type=int, default=256, help="int8 calibration tiles")
    o.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    o.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="benchmark page to regenerate")
    o.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-config key, e.g. --set teacher-epochs=1",
    )
    o.set_defaults(func=_run_onboard)

    f = kinds.add_parser(
        "fleet",
        help="simulated hours to a target accuracy: contact-aware vs synchronous scheduling",
        description="Two federated-distillation runs on one fleet scenario and seed over the "
        "same simulated horizon: contact-aware (each round is a window of simulated time; only "
        "clients in contact get work; late replies are held, down-weighted by "
        "DECAY ** age and dropped beyond MAX_STALENESS rounds) and synchronous (every sampled "
        "client must receive and return before the next round). Writes OUT/fleet.json "
        "(accuracy against simulated hours, hours to TARGET) and OUT/fleet.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    f.add_argument(
        "--scenario", default="leo50", help="scenario name (simulations/scenarios) or TOML path"
    )
    f.add_argument("--seed", type=int, default=42)
    f.add_argument("--hours", type=float, default=96.0, help="simulated horizon, synchronous")
    f.add_argument(
        "--aware-hours", type=float, default=24.0, help="simulated horizon, contact-aware"
    )
    f.add_argument("--target", type=float, default=0.75, help="target global-student accuracy")
    f.add_argument("--per-round", type=int, default=7, help="clients given work per round, max")
    f.add_argument("--window-minutes", type=float, default=60.0, help="contact-aware round length")
    f.add_argument("--max-staleness", type=int, default=4, help="oldest accepted reply, rounds")
    f.add_argument("--decay", type=float, default=0.5, help="weight of a reply of age a: DECAY**a")
    f.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    f.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-config key of both runs, e.g. --set server-epochs=2",
    )
    f.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="benchmark page to regenerate")
    f.set_defaults(func=_run_fleet)

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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument(
        "--clients", type=int, nargs="+", default=[1_000, 10_000], help="fleet sizes to run"
    )
    s.add_argument("--per-round", type=int, default=100, help="clients sampled per round")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--shard-size", type=int, default=50, help="tiles per client shard")
    s.add_argument(
        "--reference-per-round",
        type=int,
        default=100,
        help="reference tiles (targets) per client round; with batch 64 it sets the steps",
    )
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--data-dir", default=None, help="data root (default: $SKYDISTILL_DATA)")
    s.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    s.add_argument("--work", type=Path, default=None, help="run folders (default: OUT/scale-work)")
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-config key, e.g. --set reference-per-round=500",
    )
    s.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="benchmark page to regenerate")
    s.set_defaults(func=_run_scale)


def _run_distill(args: argparse.Namespace) -> int:
    from common.config import RunConfig
    from simulations.bench_distill import DistillBench, bench_defaults, run_bench
    from simulations.bench_docs import render_docs
    from simulations.cli import parse_sets
    from simulations.plots import plot_distill

    base = RunConfig.from_mapping({**bench_defaults().to_mapping(), **parse_sets(args.set)})
    bench = DistillBench(
        clients=args.clients,
        alpha=args.alpha,
        rounds=args.rounds,
        seed=args.seed,
        test_dir=args.test_dir,
        out=args.out,
        search_rounds=args.search_rounds,
        base=base,
    )
    run = run_bench(bench)
    plot_distill(run, args.out)
    render_docs(args.out, args.docs)
    print(_summary(run))  # noqa: T201 (the command's output)
    return 0


def _summary(run: dict[str, object]) -> str:
    methods = run["methods"]
    assert isinstance(methods, dict)
    lines = [f"alpha {run['alpha']}, {run['clients']} clients, {run['rounds']} rounds:"]
    for name, m in methods.items():
        client = m.get("client_accuracy_mean")
        lines.append(
            f"  {name:13s} final {m['final_accuracy']:.4f}  clients "
            + (f"{client:.4f}" if client is not None else "   -  ")
            + f"  {m['bytes_per_client_round']:>10,.0f} B/client-round  {m['seconds']:6.0f} s"
        )
    return "\n".join(lines)


def _run_robust(args: argparse.Namespace) -> int:
    from simulations.bench_docs import render_docs
    from simulations.bench_robust import RobustBench, run_robust
    from simulations.plots import plot_robust

    report = run_robust(
        RobustBench(
            clients=args.clients,
            attackers=args.attackers,
            rounds=args.rounds,
            seed=args.seed,
            alpha=args.alpha,
            rule=args.rule,
            attack=args.attack,
            out=args.out,
        )
    )
    plot_robust(report, args.out / "robust.png")
    render_docs(args.out, args.docs)
    print(  # noqa: T201 (the command's output)
        f"clean {report['clean']['final_accuracy']:.4f}, attacked with the mean "
        f"{report['attacked_mean']['final_accuracy']:.4f}, attacked with {args.rule} "
        f"{report['attacked_robust']['final_accuracy']:.4f}; report: {args.out / 'robust.json'}"
    )
    return 0


def _run_onboard(args: argparse.Namespace) -> int:
    from common.config import RunConfig
    from simulations.bench_docs import render_docs
    from simulations.bench_onboard import OnboardBench, run_onboard
    from simulations.cli import parse_sets

    values: dict[str, object] = {**RunConfig().to_mapping(), **parse_sets(args.set)}
    if args.data_dir:
        values["data-dir"] = args.data_dir
    report = run_onboard(
        OnboardBench(
            out=args.out,
            students=args.students,
            base=RunConfig.from_mapping(values),
            runs=args.runs,
            warmup=args.warmup,
            batch_size=args.batch_size,
            throughput_seconds=args.throughput_seconds,
            test_limit=args.test_limit,
            calibration=args.calibration_tiles,
            threads=args.threads,
        )
    )
    render_docs(args.out, args.docs)
    lines = [f"{len(report['models'])} model files; report: {args.out / 'onboard.json'}"]
    for m in report["models"]:
        lines.append(
            f"  {m['name']:14s} {m['format']:11s} {m['file_bytes']:>10,} B "
            f"{m['latency_ms_median']:8.3f} ms {m['throughput_per_s']:9.0f}/s "
            f"accuracy {m['accuracy']:.4f} (fp32 {m['accuracy_fp32']:.4f})"
        )
    print("\n".join(lines))  # noqa: T201 (the command's output)
    return 0


def _run_fleet(args: argparse.Namespace) -> int:
    from common.config import RunConfig
    from simulations.bench_docs import format_hours, render_docs
    from simulations.bench_fleet import FleetBench, fleet_defaults, run_fleet
    from simulations.cli import parse_sets

    base = RunConfig.from_mapping({**fleet_defaults().to_mapping(), **parse_sets(args.set)})
    report = run_fleet(
        FleetBench(
            scenario=args.scenario,
            seed=args.seed,
            hours=args.hours,
            aware_hours=args.aware_hours,
            target=args.target,
            per_round=args.per_round,
            window_minutes=args.window_minutes,
            max_staleness=args.max_staleness,
            decay=args.decay,
            out=args.out,
            base=base,
        )
    )
    render_docs(args.out, args.docs)
    aware = report["contact_aware"]["hours_to_target"]
    sync = report["synchronous"]["hours_to_target"]

    ratio = f"{aware / sync:.2f}" if aware is not None and sync else "-"
    print(  # noqa: T201 (the command's output)
        f"{report['scenario']}: target {args.target:.2f} reached after {format_hours(aware)} "
        f"(contact-aware) vs {format_hours(sync)} (synchronous), ratio {ratio}; "
        f"report: {args.out / 'fleet.json'}"
    )
    return 0


def _run_scale(args: argparse.Namespace) -> int:
    from common.config import RunConfig
    from simulations.bench_docs import render_docs
    from simulations.bench_scale import ScaleBench, run_scale
    from simulations.cli import parse_sets

    values: dict[str, object] = {**RunConfig().to_mapping(), **parse_sets(args.set)}
    if args.data_dir:
        values["data-dir"] = args.data_dir
    report = run_scale(
        ScaleBench(
            clients=tuple(args.clients),
            per_round=args.per_round,
            rounds=args.rounds,
            shard_size=args.shard_size,
            reference_per_round=args.reference_per_round,
            seed=args.seed,
            out=args.out,
            work=args.work,
            base=RunConfig.from_mapping(values),
        )
    )
    render_docs(args.out, args.docs)
    lines = [f"report: {args.out / 'scale.json'}"]
    for run in report["runs"]:
        lines.append(
            f"  {run['clients']:>6,} clients, {run['per_round']} per round: rounds "
            + " ".join(f"{s:.1f}" for s in run["round_seconds"])
            + f" s, plain loop {run['plain_loop_seconds']:.1f} s, overhead ratio "
            f"{run['overhead_ratio']:.2f}, peak RSS {run['peak_rss_bytes'] / 2**30:.2f} GiB"
        )
    print("\n".join(lines))  # noqa: T201 (the command's output)
    return 0
