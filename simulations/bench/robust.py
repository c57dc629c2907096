"""``skydistill bench robust``: Byzantine clients against plain, robust and history aggregation.

On one partition, through a real SuperLink: a clean federation (plain mean, no attackers),
then for each attack in ``attacks`` the same federation with ``attackers`` lying clients
(the lowest partition ids) under each rule in ``rules`` (the plain mean, trimmed mean,
median and the history rule), and ``control``, the same global student's rounds without any
client (what the clean run's clients added is ``clean_gain_over_control``; an attack that
ends near the control has erased what the clients brought, one below it has done worse).

The report keeps its first keys for the run config's own attack (``attack``): ``clean``,
``attacked_mean``, ``attacked_robust`` (``rule``), ``mean_loss_points`` and
``robust_loss_points``; ``attacks`` holds every attack's final accuracy per rule, and
``sleeper`` when the sleeper ran under ``history``: the round each sleeper turned, and the
round its trust fell under the threshold (server/trust.py).

A federation whose folder already holds its finished report (same settings) is not run again
(:func:`finished_run`): an interrupted invocation resumes at the run it stopped in.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from common.config import RunConfig
from server.checkpoint import NOT_COMPARED
from server.ground import prepare
from server.history import REPORT_FILE, finite_json
from simulations.bench.plots import plot_robust
from simulations.bench.report import write_report
from simulations.bench.robust_trust import sleeper_detection, trust_outcome
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


def finished_run(cfg: RunConfig, folder: Path) -> dict[str, Any] | None:
    """The report of a federation run in ``folder`` before, with the same settings (paths and
    the exporter aside) and every round done, else None: an invocation picks up where an
    interrupted one stopped, and a part run alone (``--attacks``) counts for the whole."""
    path = folder / REPORT_FILE
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    then = {k: v for k, v in report.get("config", {}).items() if k not in NOT_COMPARED}
    now = {k: v for k, v in finite_json(cfg.to_mapping()).items() if k not in NOT_COMPARED}
    done = (report.get("final") or {}).get("rounds_completed")
    return report if then == now and done == cfg.num_rounds else None


def planned_runs(bench: RobustBench) -> dict[str, dict[str, Any]]:
    """Every federation the bench runs, by folder name: its run-config overrides."""
    fraction = bench.attackers / bench.base.num_clients
    runs: dict[str, dict[str, Any]] = {"clean": {"aggregation": "mean", "attackers": 0.0}}
    for attack in bench.attack_list:
        for rule in bench.rules:
            runs[f"{attack}-{rule}"] = {
                "aggregation": rule,
                "attackers": fraction,
                "attack": attack,
            }
    return runs


def run_robust(bench: RobustBench) -> dict[str, Any]:
    """The federations and the control; writes ``out/robust.json`` and ``out/robust.png``."""
    base = bench.base
    work = bench.out.resolve() / f"robust-c{base.num_clients}-s{base.seed}"
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    # teacher, global and pre-installed students, cached
    ground = prepare(with_paths(bench.config(), work))
    results: dict[str, Any] = {}
    with simulation_link(work / "flwr-home") as sim:
        for name, overrides in planned_runs(bench).items():
            cfg = with_paths(bench.config(**overrides), work / name)
            report = finished_run(cfg, work / name)
            t0 = time.perf_counter()
            if report is None:
                log.info("%s: %s, %.0f%% attackers", name, cfg.aggregation, 100 * cfg.attackers)
                report = sim.run(cfg, work / name, progress=False)
                seconds = time.perf_counter() - t0
            else:
                log.info("%s: found finished in %s, not run again", name, work / name)
                seconds = float(report["final"]["seconds"])
            trust = trust_outcome(report, bench.attackers)
            results[name] = _summary(report, seconds, rule=cfg.aggregation, trust=trust)
    t0 = time.perf_counter()
    control_rounds = ground.without_clients(base.num_rounds)
    control = {
        "final_accuracy": control_rounds[-1],
        "rounds": control_rounds,
        "seconds": time.perf_counter() - t0,
    }
    out = assemble(bench, results, control, time.perf_counter() - started, work)
    write_report(bench.out / REPORT, out)
    plot_robust(out, bench.out / PLOT)
    return out


def assemble(
    bench: RobustBench,
    results: dict[str, Any],
    control: dict[str, Any],
    seconds: float,
    work: Path | None = None,
) -> dict[str, Any]:
    """robust.json from the runs' summaries (``results``, by folder name) and the control."""
    base = bench.base
    clean = results["clean"]["final_accuracy"]
    attack = base.attack
    attacks = {
        a: {rule: results[f"{a}-{rule}"]["final_accuracy"] for rule in bench.rules}
        for a in bench.attack_list
    }
    losses = {a: {r: 100 * (clean - acc) for r, acc in accs.items()} for a, accs in attacks.items()}
    robust_rules = [r for r in bench.rules if r != "mean"]
    out: dict[str, Any] = {
        "clients": base.num_clients,
        "attackers": bench.attackers,
        "attack": attack,
        "rounds": base.num_rounds,
        "alpha": base.alpha,
        "seed": base.seed,
        "ground_gap": base.archive_gap,
        "client_statistics": base.client_statistics,
        "attack_scale": base.attack_scale,
        "attack_after": base.attack_after,
        "fraction_train": base.fraction_train,
        "clean": results["clean"],
        "attacked_mean": results[f"{attack}-mean"],
        "attacked_robust": results[f"{attack}-{bench.rule}"],
        "mean_loss_points": losses[attack]["mean"],
        "robust_loss_points": losses[attack][bench.rule],
        "control": control,
        "clean_gain_over_control": clean - control["final_accuracy"],
        "attacks": attacks,
        "loss_points": losses,
        "worst_attack": max(attacks, key=lambda a: losses[a]["mean"]),
        "best_robust_loss_points": {
            a: min(losses[a][r] for r in robust_rules) if robust_rules else None for a in attacks
        },
        "runs": {k: v for k, v in results.items() if k != "clean"},
        "wall_seconds": seconds,
    }
    sleeper = results.get("sleeper-history")
    if sleeper is not None and work is not None:
        out["sleeper"] = sleeper_detection(work / "sleeper-history", bench.attackers, base)
    return out
