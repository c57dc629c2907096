"""``skydistill bench ...``: benchmark commands that write JSON reports and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.bench_flags import (
    DATA_DIR,
    DISTILL_DEFAULTS,
    FLEET_DEFAULTS,
    ROBUST_DEFAULTS,
    SCALE_CLIENTS,
    SCALE_DEFAULTS,
)
from cli.options import add_mirror, add_set, ranged
from common.config_rules import Range
from common.help_format import DefaultsHelpFormatter

DEFAULT_OUT = Path("bench/out")
DEFAULT_DOCS = Path("docs/benchmarks.md")


_COUNT = ranged(int, Range(1))
_NON_NEGATIVE = ranged(int, Range(0))
_SECONDS = ranged(float, Range(0, low_open=True))


def _common(p: argparse.ArgumentParser, docs: bool = True) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    if docs:
        p.add_argument(
            "--docs", type=Path, default=DEFAULT_DOCS, help="benchmark page to regenerate"
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks (JSON reports in bench/out/, plots, docs/benchmarks.md)",
        description="Benchmarks. Each writes a JSON report and plots to --out and regenerates "
        "docs/benchmarks.md from the reports found there. Flags win over --set, and --set "
        "over the defaults; a key given both ways with different values is an error.",
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
        formatter_class=DefaultsHelpFormatter,
    )
    d = DISTILL_DEFAULTS
    add_mirror(p, "--clients", "num-clients", d["num-clients"], "simulated clients", type=int)
    add_mirror(
        p,
        "--alpha",
        "alpha",
        d["alpha"],
        "Dirichlet label-skew concentration (0 = IID)",
        type=float,
    )
    add_mirror(
        p, "--rounds", "num-rounds", d["num-rounds"], "federated rounds of every method", type=int
    )
    add_mirror(
        p, "--seed", "seed", d["seed"], "seed of the partition, sampling and models", type=int
    )
    add_mirror(
        p,
        "--test-dir",
        "test-dir",
        "the internal test split",
        "evaluate every model on this labelled folder (<Class>/<tile>) of the same classes",
        type=Path,
    )
    add_mirror(
        p,
        "--ground-gap",
        "archive-gap",
        "no gap",
        "N:KEEP: N classes, chosen by the seed, keep only KEEP of their archive tiles (the rest "
        "go to the clients): the ground lacks what the fleet sees; the report gives every "
        "method's accuracy on those scarce classes",
        metavar="N:KEEP",
    )
    p.add_argument(
        "--search-rounds",
        type=_NON_NEGATIVE,
        default=0,
        help="rounds per FedAvg search point; 0: all --rounds, and the chosen point's search "
        "run is the reported FedAvg run",
    )
    _common(p)
    add_set(p, "codec=topk", "override a run-config key for the federated methods")
    p.set_defaults(func=_run_distill)

    r = kinds.add_parser(
        "robust",
        help="clean vs Byzantine-attacked federations with the plain mean and a robust rule",
        description="Three federated-distillation runs on one partition: clean (plain mean), "
        "with ATTACKERS Byzantine clients and the plain mean, and with them and a robust rule. "
        "Writes OUT/robust.json and OUT/robust.png.",
        formatter_class=DefaultsHelpFormatter,
    )
    d = ROBUST_DEFAULTS
    add_mirror(r, "--clients", "num-clients", d["num-clients"], "simulated clients", type=int)
    r.add_argument(
        "--attackers", type=_NON_NEGATIVE, default=20, help="Byzantine clients among them"
    )
    add_mirror(
        r,
        "--attack",
        "attack",
        "mixed",
        "what the attackers send",
        choices=("random", "inverted", "constant", "mixed"),
    )
    r.add_argument(
        "--rule",
        choices=("trimmed-mean", "median"),
        default="trimmed-mean",
        help="robust aggregation rule of the third run",
    )
    add_mirror(
        r, "--rounds", "num-rounds", d["num-rounds"], "federated rounds of each run", type=int
    )
    add_mirror(
        r,
        "--alpha",
        "alpha",
        d["alpha"],
        "Dirichlet label-skew concentration (0 = IID)",
        type=float,
    )
    add_mirror(
        r, "--seed", "seed", d["seed"], "seed of the partition, sampling and models", type=int
    )
    _common(r)
    add_set(r, "reference-per-round=300", "override a run-config key of the three runs")
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
        formatter_class=DefaultsHelpFormatter,
    )
    o.add_argument(
        "--students",
        type=Path,
        default=None,
        help="folder of student files (default: the pre-installed students of the run config)",
    )
    add_mirror(o, "--data-dir", "data-dir", DATA_DIR, "data root")
    o.add_argument("--runs", type=_COUNT, default=200, help="timed single-tile runs")
    o.add_argument("--warmup", type=_NON_NEGATIVE, default=20, help="untimed runs first")
    o.add_argument(
        "--batch-size",
        type=_COUNT,
        default=256,
        help="batch for throughput (not the training batch: that is --set batch-size)",
    )
    o.add_argument(
        "--throughput-seconds",
        type=ranged(float, Range(0)),
        default=2.0,
        help="least time per batch",
    )
    o.add_argument("--threads", type=_COUNT, default=1, help="CPU threads of every runtime")
    o.add_argument(
        "--test-limit",
        type=_COUNT,
        default=None,
        help="at most N test tiles (default: the whole test split)",
    )
    o.add_argument("--calibration-tiles", type=_COUNT, default=256, help="int8 calibration tiles")
    _common(o)
    add_set(o, "teacher-epochs=1")
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
        formatter_class=DefaultsHelpFormatter,
    )
    d = FLEET_DEFAULTS
    add_mirror(
        f,
        "--scenario",
        "scenario",
        d["scenario"],
        "scenario name (common/fleet/scenarios) or TOML path",
    )
    add_mirror(
        f, "--seed", "seed", d["seed"], "seed of the partition, sampling and models", type=int
    )
    f.add_argument("--hours", type=_SECONDS, default=96.0, help="simulated horizon, synchronous")
    f.add_argument(
        "--aware-hours", type=_SECONDS, default=24.0, help="simulated horizon, contact-aware"
    )
    f.add_argument(
        "--target",
        type=ranged(float, Range(0, 1, low_open=True)),
        default=0.75,
        help="target global-student accuracy",
    )
    f.add_argument("--per-round", type=_COUNT, default=7, help="clients given work per round, max")
    add_mirror(
        f,
        "--window-minutes",
        "round-window-minutes",
        d["round-window-minutes"],
        "contact-aware round length",
        type=float,
    )
    add_mirror(
        f,
        "--max-staleness",
        "max-staleness",
        d["max-staleness"],
        "oldest accepted reply, rounds",
        type=int,
    )
    add_mirror(
        f,
        "--decay",
        "staleness-decay",
        d["staleness-decay"],
        "weight of a reply of age a: DECAY**a",
        type=float,
    )
    _common(f)
    add_set(f, "server-epochs=2", "override a run-config key of both runs")
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
        formatter_class=DefaultsHelpFormatter,
    )
    d = SCALE_DEFAULTS
    add_mirror(
        s,
        "--clients",
        "num-clients",
        " ".join(str(n) for n in SCALE_CLIENTS),
        "fleet sizes to run",
        type=int,
        nargs="+",
    )
    s.add_argument("--per-round", type=_COUNT, default=100, help="clients sampled per round")
    add_mirror(s, "--rounds", "num-rounds", d["num-rounds"], "rounds of each run", type=int)
    add_mirror(s, "--shard-size", "shard-size", d["shard-size"], "tiles per client shard", type=int)
    add_mirror(
        s,
        "--reference-per-round",
        "reference-per-round",
        d["reference-per-round"],
        "reference tiles (targets) per client round; with batch 64 it sets the steps",
        type=int,
    )
    add_mirror(
        s, "--seed", "seed", d["seed"], "seed of the partition, sampling and models", type=int
    )
    add_mirror(s, "--data-dir", "data-dir", DATA_DIR, "data root")
    s.add_argument("--work", type=Path, default=None, help="run folders (default: OUT/scale-work)")
    _common(s)
    add_set(s, "client-epochs=2")
    s.set_defaults(func=_run_scale)


def _run_distill(args: argparse.Namespace) -> int:
    from cli.bench_args import distill_bench
    from simulations.bench.distill import run_bench
    from simulations.bench.docs import render_docs
    from simulations.bench.plots import plot_distill

    bench = distill_bench(args)
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
    from cli.bench_args import robust_bench
    from simulations.bench.docs import render_docs
    from simulations.bench.plots import plot_robust
    from simulations.bench.robust import run_robust

    report = run_robust(robust_bench(args))
    plot_robust(report, args.out / "robust.png")
    render_docs(args.out, args.docs)
    print(  # noqa: T201 (the command's output)
        f"clean {report['clean']['final_accuracy']:.4f}, attacked with the mean "
        f"{report['attacked_mean']['final_accuracy']:.4f}, attacked with {args.rule} "
        f"{report['attacked_robust']['final_accuracy']:.4f}; report: {args.out / 'robust.json'}"
    )
    return 0


def _run_onboard(args: argparse.Namespace) -> int:
    from cli.bench_args import onboard_bench
    from simulations.bench.docs import render_docs
    from simulations.bench.onboard import run_onboard

    report = run_onboard(onboard_bench(args))
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
    from cli.bench_args import fleet_bench
    from simulations.bench.docs import format_hours, render_docs
    from simulations.bench.fleet import run_fleet

    report = run_fleet(fleet_bench(args))
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
    from cli.bench_args import scale_bench
    from simulations.bench.docs import render_docs
    from simulations.bench.scale import run_scale

    report = run_scale(scale_bench(args))
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
