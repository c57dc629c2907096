"""``skydistill bench fleet``: simulated time to accuracy, contact-aware vs synchronous.

Two federated-distillation runs on one fleet scenario and seed, through a real SuperLink and
Flower's Ray simulation engine. Contact-aware: each round is a window of simulated time and
only clients in contact then get work; late replies are held, down-weighted or dropped.
Synchronous: the sampled clients must all receive and return before the next round. Each
round's accuracy is the global student's on the test split; its simulated hours come from
the scenario's contact windows. The synchronous run covers ``hours`` of simulated time; the
contact-aware one ``aware_hours`` (default: a quarter of it; its rounds are
short, so covering the whole horizon would multiply the bench's wall time for no new answer).

Each schedule also has its no-client control (``control_curve``, ``control_hours_to_target``):
the same global student taking as many server updates towards the teacher's soft labels
alone as that schedule gave it by each point in simulated time. A schedule's lead over its
control is what the clients' knowledge added; a lead that the control shows too is only the
count of server-side updates per simulated hour.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import torch

from common.config import RunConfig
from common.fleet.contacts import contact_plan
from common.fleet.scenario import load_scenario
from server.fleet import build_schedule, bytes_per_tile
from server.ground import prepare
from simulations.bench.plots import plot_fleet
from simulations.bench.report import write_report
from simulations.bench.settings import FleetBench
from simulations.simulate import simulation_link, with_paths

log = logging.getLogger(__name__)

REPORT = "fleet.json"
PLOT = "fleet.png"
SCHEDULES = {"contact_aware": "contact-aware", "synchronous": "synchronous"}


def rounds_in_horizon(bench: FleetBench, cfg: RunConfig) -> int:
    """Rounds that fit in the schedule's horizon (synchronous: replay its deterministic plan)."""
    if cfg.schedule == "contact-aware":
        return math.ceil(bench.aware_hours * 60 / cfg.round_window_minutes)
    schedule = build_schedule(cfg)
    r = 0
    while True:
        r += 1
        plan = schedule.plan_round(r)
        if plan.end >= bench.hours or not plan.clients:
            return r


def hours_to_target(curve: list[list[float]], target: float) -> float | None:
    return next((h for h, acc in curve if acc >= target), None)


def server_updates(rounds: list[dict[str, Any]]) -> list[int]:
    """After each round, how many times the global student has been updated so far (a round
    in which no knowledge arrived leaves it as it was: ``distill_loss`` is null)."""
    counts, n = [], 0
    for r in rounds:
        n += r.get("distill_loss") is not None
        counts.append(n)
    return counts


def control_curve(rounds: list[dict[str, Any]], without_clients: list[float]) -> list[list[float]]:
    """[hours, accuracy] of the no-client control on a schedule's clock: ``without_clients[u]``
    is the global student's accuracy after ``u`` updates towards the teacher alone."""
    return [[0.0, without_clients[0]]] + [
        [r["simulated_hours"], without_clients[u]]
        for r, u in zip(rounds, server_updates(rounds), strict=True)
    ]


def run_fleet(bench: FleetBench) -> dict[str, Any]:
    """Both schedules and their controls; writes ``out/fleet.json`` and ``out/fleet.png``."""
    work = bench.out.resolve() / f"fleet-{bench.base.scenario}-s{bench.base.seed}"
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    # teacher and students, cached
    ground = prepare(with_paths(bench.config("contact-aware"), work))
    scenario = load_scenario(bench.base.scenario)
    contact_plan(
        scenario, payload_bytes=bench.base.reference_per_round * bytes_per_tile(bench.base)
    )
    out: dict[str, Any] = {"scenario": scenario.name, "target_accuracy": bench.target}
    details: dict[str, Any] = {}
    reports: dict[str, list[dict[str, Any]]] = {}
    with simulation_link(work / "flwr-home") as sim:
        for key, schedule in SCHEDULES.items():
            probe = with_paths(bench.config(schedule), work / key)
            cfg = with_paths(bench.config(schedule, rounds_in_horizon(bench, probe)), work / key)
            log.info("%s: %d rounds", key, cfg.num_rounds)
            t0 = time.perf_counter()
            report = sim.run(cfg, work / key, progress=False)
            rounds = report["rounds"]
            reports[key] = rounds
            curve = [[0.0, ground.student_start_accuracy]] + [
                [r["simulated_hours"], r["global_accuracy"]] for r in rounds
            ]
            out[key] = {"hours_to_target": hours_to_target(curve, bench.target), "curve": curve}
            details[key] = {
                "rounds": len(rounds),
                "wall_seconds": time.perf_counter() - t0,
                "replies_ok": sum(r["clients_ok"] for r in rounds),
                "stale_accepted": sum(r["stale_accepted"] for r in rounds),
                "stale_dropped": sum(r["stale_dropped"] for r in rounds),
            }
    updates = max(server_updates(r)[-1] if r else 0 for r in reports.values())
    t0 = time.perf_counter()
    without = [ground.student_start_accuracy, *ground.without_clients(updates)]
    details["control_wall_seconds"] = time.perf_counter() - t0
    for key, rounds in reports.items():
        curve = control_curve(rounds, without)
        out[key]["control_curve"] = curve
        out[key]["control_hours_to_target"] = hours_to_target(curve, bench.target)
    details["wall_seconds"] = time.perf_counter() - started
    write_report(work / "details.json", details)
    log.info("bench fleet: %s", details)
    write_report(bench.out / REPORT, out)
    plot_fleet(out, bench.out / PLOT)
    return {**out, "details": details}
