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

The report is written after each federation (``missing`` names what is not run yet,
``complete`` says whether nothing is), so an interrupted invocation keeps what it measured. A
federation is not run again when its folder holds its finished report with the same settings
(:func:`finished_run`), or when ``out/robust.json`` holds its summary with the same settings
measured on the same kind of machine (:func:`machine`: the resolved precision, the CPU model
and torch's version, which the seeded figures depend on): an interrupted invocation resumes
at the run it stopped in, on this machine or on another of its kind.
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
from common.precision import use_bf16
from server.checkpoint import NOT_COMPARED
from server.ground import prepare
from server.history import REPORT_FILE, finite_json
from simulations.bench.plots import plot_robust
from simulations.bench.report import cpu_model, write_report
from simulations.bench.robust_trust import sleeper_detection, trust_outcome
from simulations.bench.settings import RobustBench
from simulations.simulate import SimulationLink, simulation_link, with_paths

log = logging.getLogger(__name__)

REPORT = "robust.json"
PLOT = "robust.png"
CLEAN = "clean"
SLEEPER_RUN = "sleeper-history"


def machine(cfg: RunConfig) -> dict[str, str]:
    """What a seeded run's figures depend on beside its settings: the precision training
    resolves to, the CPU model and torch's version."""
    return {
        "precision": "bf16" if use_bf16(cfg.precision) else "fp32",
        "cpu": cpu_model(),
        "torch": torch.__version__,
    }


def compared(cfg: RunConfig) -> dict[str, Any]:
    """The settings two runs must share to be the same run (paths and the exporter aside)."""
    return {k: v for k, v in finite_json(cfg.to_mapping()).items() if k not in NOT_COMPARED}


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
    done = (report.get("final") or {}).get("rounds_completed")
    return report if then == compared(cfg) and done == cfg.num_rounds else None


def earlier_summaries(path: Path, here: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The run summaries (and ``control``) of the robust.json in ``path`` when it was measured
    on a machine like ``here``; by name, each with its ``config`` to compare. None else."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(report, dict) or report.get("machine") != here:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for name, summary in {
        CLEAN: report.get("clean"),
        "control": report.get("control"),
        **(report.get("runs") or {}),
    }.items():
        if isinstance(summary, dict) and isinstance(summary.get("config"), dict):
            found[name] = dict(summary)
    if SLEEPER_RUN in found and isinstance(report.get("sleeper"), dict):
        found[SLEEPER_RUN]["sleeper"] = report["sleeper"]
    return found


def planned_runs(bench: RobustBench) -> dict[str, dict[str, Any]]:
    """Every federation the bench runs, by folder name, in the order they run: their
    run-config overrides. The clean run, the base's attack under the mean and under ``rule``
    first (the report's documented keys), then rule by rule in ``rules``' order, every attack
    under each: an invocation stopped early has whole columns of the matrix."""
    fraction = bench.attackers / bench.base.num_clients
    runs: dict[str, dict[str, Any]] = {CLEAN: {"aggregation": "mean", "attackers": 0.0}}
    rules = dict.fromkeys(("mean", *bench.rules))
    attacks = dict.fromkeys((bench.base.attack, *bench.attack_list))
    order = [(bench.base.attack, "mean"), (bench.base.attack, bench.rule)]
    order += [(a, r) for r in rules for a in attacks]
    for attack, rule in dict.fromkeys(order):
        runs[f"{attack}-{rule}"] = {"aggregation": rule, "attackers": fraction, "attack": attack}
    return runs


def run_robust(bench: RobustBench) -> dict[str, Any]:
    """The control and the federations; writes ``out/robust.json`` and ``out/robust.png``
    after each federation (from the third, which completes the documented keys)."""
    base = bench.base
    work = bench.out.resolve() / f"robust-c{base.num_clients}-s{base.seed}"
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    here = machine(base)
    earlier = earlier_summaries(bench.out / REPORT, here)
    # teacher, global and pre-installed students, cached
    ground = prepare(with_paths(bench.config(), work))
    control = earlier.get("control")
    if control is None or control["config"] != compared(bench.config()):
        t0 = time.perf_counter()
        control_rounds = ground.without_clients(base.num_rounds)
        control = {
            "final_accuracy": control_rounds[-1],
            "rounds": control_rounds,
            "seconds": time.perf_counter() - t0,
            "config": compared(bench.config()),
        }
    results: dict[str, Any] = {}
    plan = planned_runs(bench)
    out: dict[str, Any] = {}
    with simulation_link(work / "flwr-home") as sim:
        for name, overrides in plan.items():
            cfg = with_paths(bench.config(**overrides), work / name)
            summary = earlier.get(name)
            if summary is not None and summary["config"] == compared(cfg):
                log.info("%s: in %s, measured on this kind of machine", name, bench.out / REPORT)
                results[name] = summary
            else:
                results[name] = _federation(sim, bench, cfg, work / name, name)
            if all(n in results for n in list(plan)[:3]):
                seconds = time.perf_counter() - started
                out = assemble(bench, results, control, seconds, here)
                write_report(bench.out / REPORT, out)
                plot_robust(out, bench.out / PLOT)
    return out


def _federation(
    sim: SimulationLink, bench: RobustBench, cfg: RunConfig, folder: Path, name: str
) -> dict[str, Any]:
    """Run (or find finished in ``folder``) one federation of the bench: its summary."""
    report = finished_run(cfg, folder)
    t0 = time.perf_counter()
    if report is None:
        log.info("%s: %s, %.0f%% attackers", name, cfg.aggregation, 100 * cfg.attackers)
        report = sim.run(cfg, folder, progress=False)
        seconds = time.perf_counter() - t0
    else:
        log.info("%s: found finished in %s, not run again", name, folder)
        seconds = float(report["final"]["seconds"])
    trust = trust_outcome(report, bench.attackers)
    summary = _summary(report, seconds, rule=cfg.aggregation, trust=trust, config=compared(cfg))
    if name == SLEEPER_RUN:
        summary["sleeper"] = sleeper_detection(folder, bench.attackers, cfg)
    return summary


def assemble(
    bench: RobustBench,
    results: dict[str, Any],
    control: dict[str, Any],
    seconds: float,
    here: dict[str, str] | None = None,
) -> dict[str, Any]:
    """robust.json from the runs' summaries (``results``, by folder name; the clean run and
    the base's attack under the mean and under ``rule`` at least) and the control. Runs not
    in ``results`` are listed in ``missing`` and absent from ``attacks``."""
    base = bench.base
    clean = results[CLEAN]["final_accuracy"]
    attack = base.attack
    attacks: dict[str, dict[str, float]] = {}
    for a in bench.attack_list:
        accs = {
            r: results[f"{a}-{r}"]["final_accuracy"] for r in bench.rules if f"{a}-{r}" in results
        }
        if accs:
            attacks[a] = accs
    losses = {a: {r: 100 * (clean - acc) for r, acc in accs.items()} for a, accs in attacks.items()}
    robust_rules = [r for r in bench.rules if r != "mean"]

    def best_robust(a: str) -> float | None:
        found = [losses[a][r] for r in robust_rules if r in losses[a]]
        return min(found) if found else None

    with_mean = [a for a in attacks if "mean" in losses[a]]
    missing = [name for name in planned_runs(bench) if name not in results]
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
        "machine": here if here is not None else machine(base),
        "rules": list(bench.rules),
        "clean": results[CLEAN],
        "attacked_mean": results[f"{attack}-mean"],
        "attacked_robust": results[f"{attack}-{bench.rule}"],
        "mean_loss_points": losses[attack]["mean"],
        "robust_loss_points": losses[attack][bench.rule],
        "control": control,
        "clean_gain_over_control": clean - control["final_accuracy"],
        "attacks": attacks,
        "loss_points": losses,
        "worst_attack": max(with_mean, key=lambda a: losses[a]["mean"]),
        "best_robust_loss_points": {a: best_robust(a) for a in attacks},
        "runs": {
            k: {f: v for f, v in summary.items() if f != "sleeper"}
            for k, summary in results.items()
            if k != CLEAN
        },
        "complete": not missing,
        "missing": missing,
        "wall_seconds": seconds,
    }
    sleeper = results.get(SLEEPER_RUN, {}).get("sleeper")
    if sleeper is not None:
        out["sleeper"] = sleeper
    return out
