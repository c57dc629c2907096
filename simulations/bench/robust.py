"""``skydistill bench robust``: Byzantine clients against plain and robust aggregation.

Three federated-distillation runs on one partition, through a real SuperLink: clean (plain
mean, no attackers), attacked with the plain mean, and attacked with a robust rule
(trimmed mean by default). The attackers are the clients with the lowest partition ids;
they send well-formed but false soft predictions (random, inverted or constant). A fourth
figure, ``control``, is the same global student's rounds without any client (what the clean
run's clients added is ``clean_gain_over_control``; an attack that ends near the control has
erased what the clients brought).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import torch

from server.ground import prepare
from simulations.bench.plots import plot_robust
from simulations.bench.report import write_report
from simulations.bench.settings import RobustBench
from simulations.simulate import simulation_link, with_paths

log = logging.getLogger(__name__)

REPORT = "robust.json"
PLOT = "robust.png"


def _summary(report: dict[str, Any], seconds: float, **extra: Any) -> dict[str, Any]:
    rounds = report["rounds"]
    return {
        "final_accuracy": report["final"]["global_accuracy"],
        "rounds": [r["global_accuracy"] for r in rounds],
        "teacher_agreement": [r.get("teacher_agreement") for r in rounds],
        "seconds": seconds,
        **extra,
    }


def run_robust(bench: RobustBench) -> dict[str, Any]:
    """The three runs and the control; writes ``out/robust.json`` and ``out/robust.png``."""
    base = bench.base
    work = bench.out.resolve() / f"robust-c{base.num_clients}-s{base.seed}"
    fraction = bench.attackers / base.num_clients
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    # teacher, global and pre-installed students, cached
    ground = prepare(with_paths(bench.config(), work))
    runs = {
        "clean": {"aggregation": "mean", "attackers": 0.0},
        "attacked_mean": {"aggregation": "mean", "attackers": fraction},
        "attacked_robust": {"aggregation": bench.rule, "attackers": fraction},
    }
    results: dict[str, Any] = {}
    with simulation_link(work / "flwr-home") as sim:
        for name, overrides in runs.items():
            cfg = with_paths(bench.config(**overrides), work / name)
            log.info("%s: %s, %.0f%% attackers", name, cfg.aggregation, 100 * cfg.attackers)
            t0 = time.perf_counter()
            report = sim.run(cfg, work / name, progress=False)
            results[name] = _summary(report, time.perf_counter() - t0, rule=cfg.aggregation)
    t0 = time.perf_counter()
    control_rounds = ground.without_clients(base.num_rounds)
    control = {
        "final_accuracy": control_rounds[-1],
        "rounds": control_rounds,
        "seconds": time.perf_counter() - t0,
    }
    clean = results["clean"]["final_accuracy"]
    out = {
        "clients": base.num_clients,
        "attackers": bench.attackers,
        "attack": base.attack,
        "rounds": base.num_rounds,
        "alpha": base.alpha,
        "seed": base.seed,
        **results,
        "mean_loss_points": 100 * (clean - results["attacked_mean"]["final_accuracy"]),
        "robust_loss_points": 100 * (clean - results["attacked_robust"]["final_accuracy"]),
        "control": control,
        "clean_gain_over_control": clean - control["final_accuracy"],
        "wall_seconds": time.perf_counter() - started,
    }
    write_report(bench.out / REPORT, out)
    plot_robust(out, bench.out / PLOT)
    return out
