"""(c) of ``bench distill``: the best of Flower's FedAvg, FedProx and FedAdam, each searched.

FedAvg's search runs every point of ``DistillBench.search`` (optimiser, rate, batch-norm
handling, local epochs) with the tiny student on every client; FedProx's and FedAdam's run
their own knob (``DistillBench.family``) on the client settings FedAvg chose. Every point is
scored on the clients' pooled held-out splits, never on the test set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from common.models import count_parameters
from common.training import accuracy
from simulations.bench.distill_methods import Methods
from simulations.bench.measure import (
    client_cost,
    method_entry,
    pooled_accuracy,
    round_accuracies,
    traffic,
)
from simulations.bench.search_space import SearchPoint
from simulations.simulate import SimulationLink

log = logging.getLogger(__name__)


def fedavg_family(methods: Methods, sim: SimulationLink) -> dict[str, Any]:
    """The FedAvg family: FedAvg's search, then FedProx's and FedAdam's on FedAvg's chosen
    client settings; the member with the best validation accuracy is the reported
    baseline, the other two go under its ``fedavg_family``."""
    fedavg, chosen = search(methods, sim, "fedavg", methods.bench.search)
    members = {"FedAvg": fedavg}
    for strategy, values in methods.bench.family.items():
        points = tuple(chosen.with_strategy(strategy, v) for v in values)
        members[strategy], _ = search(methods, sim, strategy.lower(), points)
    best = max(members, key=lambda m: members[m]["search"]["validation_accuracy"])
    report = members.pop(best)
    report["fedavg_family"] = members
    log.info("FedAvg family: %s is the best baseline", best)
    return report


def search(
    methods: Methods, sim: SimulationLink, name: str, points: tuple[SearchPoint, ...]
) -> tuple[dict[str, Any], SearchPoint]:
    """Every point, scored on the clients' held-out splits; the chosen point's run over
    every round as a method entry, and the chosen point.

    With ``search_rounds`` 0 (the default) each point runs for all the rounds, so the
    point is chosen for the horizon it is reported at (a rate that looks best after five
    rounds can drift down over thirty) and the chosen point's run is the reported one."""
    cfg = methods.cfg
    search_rounds = methods.bench.search_rounds or cfg.num_rounds
    tried: list[dict[str, Any]] = []
    runs: list[tuple[dict[str, Any], Path]] = []
    for i, point in enumerate(points):
        run, out = methods.federated(
            sim,
            f"{name}-search-{i}",
            rounds=search_rounds,
            method="fedavg",
            student="tiny",
            **point.overrides(),
        )
        model = methods.global_model(out)
        # Scored on the clients' held-out splits, never on the test set.
        val = pooled_accuracy(model, methods.holdouts)
        tried.append({**point.__dict__, "validation_accuracy": val, "seconds": run["seconds"]})
        runs.append((run, out))
        log.info("%s search %s: validation accuracy %.4f", point.strategy, point, val)
    best = max(range(len(tried)), key=lambda i: tried[i]["validation_accuracy"])
    chosen = points[best]
    if search_rounds == cfg.num_rounds:
        run, out = runs[best]
    else:
        run, out = methods.federated(
            sim, name, method="fedavg", student="tiny", **chosen.overrides()
        )
    model = methods.global_model(out)
    scores = methods.scores(model)
    total, client_rounds = traffic(run["report"])
    entry = method_entry(
        accuracy(model, methods.test.x, methods.test.y),
        strategy=chosen.strategy,
        scarce_class_accuracy=methods.scarce_accuracy(model),
        client_gain_over_start=methods.gain_over_start(
            scores, methods.bench.config(student="tiny")
        ),
        **client_cost(run["report"]),
        rounds=round_accuracies(run["report"]),
        params={"tiny": count_parameters(model)},
        seconds=run["seconds"],
        clients=scores,
        bytes_total=total,
        client_rounds=client_rounds,
        search={
            "rounds": search_rounds,
            "scored_on": "clients' pooled held-out splits",
            "points": tried,
            "chosen": chosen.__dict__,
            "validation_accuracy": tried[best]["validation_accuracy"],
            "local_epochs": chosen.local_epochs,
        },
    )
    return entry, chosen
