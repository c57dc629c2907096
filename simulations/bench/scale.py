"""``skydistill bench scale``: thousands of registered virtual clients on Flower + Ray.

For each fleet size: a SuperLink in simulation mode with ``num-supernodes`` = N virtual
clients, ``per_round`` of them sampled per round, on the real RGB tiles. At this scale the
client pool is far smaller than N disjoint shards, so every client draws ``shard_size`` tiles
from the pool (``shard-size``: with replacement across clients, see common/partition.py).

Per round it reports the wall seconds of the clients' phase as the ServerApp measures it
(configure_train to the end of aggregate_train: sending, Ray scheduling, the clients' work,
replies, aggregation; not the server-side distillation and evaluation after it), the whole
round too, and the peak memory of the simulation's process tree (SuperLink, SuperExec,
ServerApp, simulation, Ray). Every client saves the train message it received
(``trace-dir``); afterwards the same invocation replays exactly those messages, client by
client, through the same ClientApp ``train`` function in this process (no Flower runtime, no
Ray), with the same CPU budget (torch threads = cores), and times that plain loop.
overhead ratio = sum of the Flower + Ray round seconds / plain-loop seconds.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from flwr.app import Context, RecordDict

from clients import resident, timing
from clients.app import train
from clients.trace import load_trace, train_message
from common import keys
from common.config import RunConfig
from common.errors import SkydistillError
from common.federation import load_federation
from server.ground import prepare
from simulations.bench.memory import TreeMemory
from simulations.bench.priority import FlowerBelowClients
from simulations.bench.report import merged_runs, write_report
from simulations.bench.settings import ScaleBench
from simulations.simulate import ray_env, simulation_link, with_paths

log = logging.getLogger(__name__)

REPORT = "scale.json"
# Ray starts its workers at nice 15 (its daemons stay responsive); the plain loop runs at 0.
# On a shared machine that would compare priorities, not frameworks: run both at 0.
RAY_WORKER_NICENESS = {"RAY_worker_niceness": "0"}


def _flower_rounds(
    cfg: RunConfig, folder: Path, interval: float, flower_niceness: int = 0
) -> tuple[dict[str, Any], TreeMemory]:
    env = {**ray_env(None), **RAY_WORKER_NICENESS}
    with simulation_link(folder / "flwr-home", env=env) as sim:
        if sim.link.proc is None:
            raise SkydistillError("the SuperLink did not start")
        pid = sim.link.proc.pid
        with (
            TreeMemory(pid, interval=interval) as memory,
            FlowerBelowClients(pid, flower_niceness, interval=interval) as below,
        ):
            report = sim.run(cfg, Path(cfg.out_dir), progress=False)
    report["flower_processes_reniced"] = len(below.reniced)
    return report, memory


@dataclass(frozen=True)
class PlainLoop:
    """What the plain loop measured: seconds per round, client rounds, and the seconds of each
    part of a client round (clients/timing.py) summed over all of them."""

    round_seconds: list[float]
    client_rounds: int
    parts: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(self.round_seconds)

    @property
    def compute_seconds(self) -> float:
        """Training and prediction alone: what the client rounds are for."""
        return sum(self.parts[p] for p in timing.COMPUTE)

    @property
    def compute_ratio(self) -> float:
        return self.seconds / self.compute_seconds if self.compute_seconds else float("nan")

    def per_client_round(self) -> dict[str, float]:
        """Milliseconds of each part per client round, and ``other``: the rest of the call."""
        n = max(1, self.client_rounds)
        out = {p: 1e3 * self.parts[p] / n for p in timing.PARTS}
        out["other"] = 1e3 * (self.seconds - sum(self.parts.values())) / n
        out["total"] = 1e3 * self.seconds / n
        return {k: round(v, 2) for k, v in out.items()}


def plain_loop(cfg: RunConfig, trace: Path, out: Path) -> PlainLoop:
    """Replay the traced train messages through ``clients.app.train`` in this process.

    Same clients (partition ids), rounds, messages (targets, indices, config) and run config
    as the Flower run; each client keeps its own Context across rounds as a virtual node does,
    and this process keeps what a ClientApp process keeps (clients/resident.py), starting from
    nothing. The data are loaded before the clock starts."""
    shutil.rmtree(out, ignore_errors=True)
    plain = cfg.with_values({"out-dir": str(out), "trace-dir": ""})
    traced = load_trace(trace)
    if not traced:
        raise SkydistillError(f"no traced train messages in {trace}: the Flower run trained none")
    resident.forget()
    load_federation(plain)  # decode and partition outside the timed loop
    resident.run_data(plain)  # (what the ClientApp reads of them)
    threads = os.cpu_count() or 1
    contexts: dict[int, Context] = {}
    failed = 0
    seconds: dict[int, float] = {}
    timing.reset()
    for item in traced:
        context = contexts.setdefault(
            item.partition_id,
            Context(
                run_id=1,
                node_id=item.partition_id,
                node_config={
                    keys.NODE_PARTITION_ID: item.partition_id,
                    keys.NODE_NUM_PARTITIONS: cfg.num_clients,
                    keys.NODE_NUM_THREADS: threads,
                },
                state=RecordDict(),
                run_config=plain.to_mapping(),
            ),
        )
        message = train_message(item.content, item.partition_id)
        started = time.perf_counter()
        reply = train(message, context)
        took = time.perf_counter() - started
        seconds[item.server_round] = seconds.get(item.server_round, 0.0) + took
        failed += reply.has_error()
    parts = timing.totals()
    resident.forget()
    if failed:
        log.warning("%d of %d replayed client rounds failed", failed, len(traced))
    return PlainLoop([seconds[r] for r in sorted(seconds)], len(traced), parts)


def run_size(bench: ScaleBench, clients: int, work: Path) -> dict[str, Any]:
    folder = work / f"c{clients}"
    shutil.rmtree(folder, ignore_errors=True)
    cfg = with_paths(bench.config(clients, folder), folder / "flower")
    torch.set_num_threads(os.cpu_count() or 1)
    prepare(cfg)  # teacher, global and pre-installed students: cached, before any timing
    log.info(
        "%d virtual clients, %d per round, %d rounds", clients, bench.per_round, cfg.num_rounds
    )
    load = {"flower_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    report, memory = _flower_rounds(cfg, folder, bench.sample_interval, bench.flower_niceness)
    flower_wall = time.perf_counter() - t0
    load["flower_end"] = load["plain_start"] = os.getloadavg()[0]
    rounds = report["rounds"]
    round_seconds = [float(r["train_seconds"]) for r in rounds]
    plain = plain_loop(cfg, folder / "trace", folder / "plain")
    plain_rounds, client_rounds = plain.round_seconds, plain.client_rounds
    load["plain_end"] = os.getloadavg()[0]
    plain_seconds = plain.seconds
    selected = sum(int(r["clients_selected"]) for r in rounds)
    ok = sum(int(r["clients_ok"]) for r in rounds)
    if client_rounds != ok:
        raise SkydistillError(
            f"{client_rounds} traced client rounds but {ok} valid replies: see {folder}"
        )
    run = {
        "clients": clients,
        "per_round": bench.per_round,
        "rounds": len(rounds),
        "round_seconds": round_seconds,
        "plain_loop_seconds": plain_seconds,
        "overhead_ratio": sum(round_seconds) / plain_seconds,
        "overhead_ratio_after_round_1": (
            sum(round_seconds[1:]) / sum(plain_rounds[1:]) if len(plain_rounds) > 1 else None
        ),
        "plain_loop_round_seconds": plain_rounds,
        "client_compute_ratio": plain.compute_ratio,
        "client_compute_seconds": plain.compute_seconds,
        "client_round_ms": plain.per_client_round(),
        "load_average": load,
        "peak_rss_bytes": memory.peak.rss_bytes,
        "peak_pss_bytes": memory.peak.pss_bytes,
        "peak_rss_by_process": memory.peak.by_name,
        "peak_processes": memory.peak.processes,
        "memory_samples": memory.peak.samples,
        "cpu_seconds_by_process": memory.peak.cpu_by_name,
        "busiest_thread_cpu_seconds": memory.peak.busiest_thread_by_name,
        "round_total_seconds": [float(r["seconds"]) for r in rounds],
        "client_rounds": client_rounds,
        "clients_selected": selected,
        "clients_ok": ok,
        "flower_wall_seconds": flower_wall,
        "shard_size": cfg.shard_size,
        "shards": "drawn with replacement across clients from the client pool",
        "plain_loop_threads": os.cpu_count() or 1,
        "flower_niceness": bench.flower_niceness,
        "flower_processes_reniced": report["flower_processes_reniced"],
        "roles": cfg.roles,
        "reference_per_round": cfg.reference_per_round,
        "max_in_flight": cfg.max_in_flight,
        "seed": cfg.seed,
    }
    log.info(
        "%d clients: rounds %s s, plain loop %.1f s, overhead ratio %.2f, client compute "
        "ratio %.2f, peak RSS %.2f GiB",
        clients,
        ", ".join(f"{s:.1f}" for s in round_seconds),
        plain_seconds,
        run["overhead_ratio"],
        plain.compute_ratio,
        memory.peak.rss_bytes / 2**30,
    )
    return run


WHAT = {
    "round_seconds": "per round, configure_train to end of aggregate_train in the ServerApp "
    "(send, Ray scheduling, client work, replies, aggregation); excludes server-side "
    "distillation and evaluation (round_total_seconds includes them)",
    "plain_loop_seconds": "the same traced train messages replayed through clients.app.train "
    "in one process, torch threads = cores, data preloaded",
    "overhead_ratio": "sum(round_seconds) / plain_loop_seconds",
    "client_compute_ratio": "plain_loop_seconds / the seconds the same plain loop spent in "
    "training steps and predictions (clients/timing.py parts train + predict)",
    "client_round_ms": "milliseconds per plain-loop client round of each part: decode (run "
    "config, message), data (shard and reference tensors), model (the student to train), "
    "train, predict, keep (the student into the state and its student file), encode (the "
    "reply); other: the rest of the call",
    "max_in_flight": "the run config's max-in-flight: messages of a round unanswered at once "
    "(server/dispatch.py; 0: all at once)",
    "cpu_seconds_by_process": "CPU seconds (user + system) of each process of the Flower "
    "run's tree, summed by name, as last sampled",
    "peak_rss_bytes": "max over samples every 0.5 s of the summed RSS of the SuperLink and "
    "all its descendants (SuperExec, ServerApp, simulation, Ray); shared pages counted once "
    "per process",
}


def write_scale_report(out: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Write OUT/scale.json after each fleet size; a run of the same size replaces the old."""
    path = out / REPORT
    report = {
        "runs": merged_runs(
            path, runs, same=lambda r: r.get("clients"), order=lambda r: int(r["clients"])
        ),
        "what": WHAT,
        "cpu_count": os.cpu_count(),
    }
    write_report(path, report)
    return report


def run_scale(bench: ScaleBench) -> dict[str, Any]:
    """Run every fleet size; OUT/scale.json is updated after each (``flwr run`` packages the
    project folder, so ``work`` must be git-ignored, as OUT/scale-work under bench/out is)."""
    work = (bench.work or bench.out / "scale-work").resolve()
    runs: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for n in bench.clients:
        runs.append(run_size(bench, n, work))
        report = write_scale_report(bench.out, runs)
    return {**report, "runs": runs}
