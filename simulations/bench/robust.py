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

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_write
from common.config import RunConfig
from server.ground import prepare
from simulations.bench.distill import bench_defaults
from simulations.flower import SuperLink, write_connection
from simulations.simulate import run_federation, with_paths

log = logging.getLogger(__name__)

REPORT = "robust.json"


def robust_defaults() -> RunConfig:
    """bench distill's run config without class statistics: the attacks (clients/attacks.py)
    poison soft predictions, which clients in statistics mode do not send."""
    return RunConfig.from_mapping({**bench_defaults().to_mapping(), "client-statistics": 0})


@dataclass(frozen=True)
class RobustBench:
    clients: int = 100
    attackers: int = 20
    rounds: int = 10
    seed: int = 42
    alpha: float = 0.5
    rule: str = "trimmed-mean"
    attack: str = "mixed"
    out: Path = Path("bench/out")
    base: RunConfig = field(default_factory=robust_defaults)

    def config(self, work: Path, **overrides: Any) -> RunConfig:
        cfg = RunConfig.from_mapping(
            {
                **self.base.to_mapping(),
                "num-clients": self.clients,
                "num-rounds": self.rounds,
                "alpha": self.alpha,
                "seed": self.seed,
                "attack": self.attack,
                "metrics-address": "",
                "metrics-linger": 0.0,
                **overrides,
            }
        )
        return with_paths(cfg, work)


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
    if not 0 <= bench.attackers < bench.clients:
        raise ValueError(f"attackers must be in [0, {bench.clients}), got {bench.attackers}")
    work = bench.out.resolve() / f"robust-c{bench.clients}-s{bench.seed}"
    fraction = bench.attackers / bench.clients
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    ground = prepare(bench.config(work))  # teacher, global and pre-installed students, cached
    runs = {
        "clean": {"aggregation": "mean", "attackers": 0.0},
        "attacked_mean": {"aggregation": "mean", "attackers": fraction},
        "attacked_robust": {"aggregation": bench.rule, "attackers": fraction},
    }
    results: dict[str, Any] = {}
    home = work / "flwr-home"
    with SuperLink(home) as link:
        write_connection(home, link.address)
        for name, overrides in runs.items():
            cfg = bench.config(work / name, **overrides)
            log.info("%s: %s, %.0f%% attackers", name, cfg.aggregation, 100 * cfg.attackers)
            t0 = time.perf_counter()
            report = run_federation(home, cfg, work / name, progress=False)
            results[name] = _summary(report, time.perf_counter() - t0, rule=cfg.aggregation)
    t0 = time.perf_counter()
    control_rounds = ground.without_clients(bench.rounds)
    control = {
        "final_accuracy": control_rounds[-1],
        "rounds": control_rounds,
        "seconds": time.perf_counter() - t0,
    }
    clean = results["clean"]["final_accuracy"]
    out = {
        "clients": bench.clients,
        "attackers": bench.attackers,
        "attack": bench.attack,
        "rounds": bench.rounds,
        "alpha": bench.alpha,
        "seed": bench.seed,
        **results,
        "mean_loss_points": 100 * (clean - results["attacked_mean"]["final_accuracy"]),
        "robust_loss_points": 100 * (clean - results["attacked_robust"]["final_accuracy"]),
        "control": control,
        "clean_gain_over_control": clean - control["final_accuracy"],
        "wall_seconds": time.perf_counter() - started,
    }
    text = json.dumps(out, indent=2).encode()
    bench.out.mkdir(parents=True, exist_ok=True)
    atomic_write(bench.out / REPORT, lambda fh: fh.write(text))
    return out
