"""``skydistill bench distill``: federated distillation against FedAvg, side by side.

On one partition and for one number of rounds, in one invocation:

a. ``teacher``: the ground segment's teacher alone (trained on the archive);
b. ``centralized``: a tiny student trained on the archive and every client's data pooled
   (the upper bound a federation cannot have);
c. ``fedavg``: the best of Flower's own ``FedAvg``, ``FedProx`` and ``FedAdam`` with the tiny
   student on every client, starting from the same pre-installed tiny student as (d): FedAvg's
   optimiser, learning rate, batch-norm handling and local epochs chosen by a small search,
   then FedProx's mu and FedAdam's server rate on those settings, every point scored on the
   clients' pooled held-out splits (the other two members under ``fedavg_family``);
d. ``fedkd``: federated distillation with the tiny student on every client;
e. ``fedkd_hetero``: federated distillation with each role's own student;

and a control, ``ground_only``: the global student of (d) and (e) on the same schedule
(cached pre-training, then one distillation pass per round) towards the teacher's soft labels
alone. What (d)'s global student gains over it is what the clients' knowledge added; what it
gains over the teacher without it is the ground segment training longer on its own data.

(c), (d) and (e) run on Flower's simulation engine through a real SuperLink. Afterwards every
client's deployable model (its own student for distillation, the global model for FedAvg) is
scored on the common test set and on the client's own held-out split.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from common.settings import PROJECT_ROOT
from simulations.bench.distill_methods import Methods
from simulations.bench.fedavg_search import fedavg_family
from simulations.bench.plots import plot_distill
from simulations.bench.report import Run, merged_runs, write_report
from simulations.bench.settings import DistillBench
from simulations.simulate import simulation_link

log = logging.getLogger(__name__)

METHODS = ("teacher", "centralized", "fedavg", "fedkd", "fedkd_hetero", "ground_only")
REPORT = "distill.json"
# A run replaces an earlier one of the same settings; runs written before ``ground_gap``
# existed had no gap.
SETTINGS = ("alpha", "clients", "rounds", "seed", "test_set", "ground_gap")
SETTINGS_BEFORE = {"ground_gap": ""}


def run_bench(bench: DistillBench) -> dict[str, Any]:
    """Run every method once; merge the run into ``out/distill.json``, plot it, return it."""
    started = time.perf_counter()
    m = Methods(bench)
    methods: dict[str, Any] = {"teacher": m.teacher(), "centralized": m.centralized()}
    with simulation_link(m.work / "flwr-home") as sim:
        methods["fedavg"] = fedavg_family(m, sim)
        methods["fedkd"] = m.fedkd(sim, "fedkd", student="tiny")
        methods["fedkd_hetero"] = m.fedkd(sim, "fedkd_hetero", student="")
    methods["ground_only"] = m.ground_only()
    control = methods["ground_only"]["final_accuracy"]
    for name in ("fedkd", "fedkd_hetero"):
        methods[name]["gain_over_control"] = methods[name]["final_accuracy"] - control
    cfg = bench.base
    run = {
        "alpha": cfg.alpha,
        "clients": cfg.num_clients,
        "rounds": cfg.num_rounds,
        "seed": cfg.seed,
        "test_set": bench.test_set,
        "ground_gap": cfg.archive_gap,
        "scarce_classes": [m.fed.spec.classes[c] for c in m.scarce],
        "config": portable_paths(m.cfg.to_mapping()),
        "wall_seconds": time.perf_counter() - started,
        "ground_seconds": {"total": m.prepare_seconds, **m.ground.seconds},
        "methods": methods,
    }
    add_run(bench.out / REPORT, run)
    plot_distill(run, bench.out)
    return run


def portable_paths(config: dict[str, Any]) -> dict[str, Any]:
    """The run config with its folders relative to the repository (``../shared/data``,
    ``bench/out/...``) where they lie beside or inside it: a report names no one machine."""
    out = dict(config)
    for key in ("data-dir", "out-dir", "test-dir"):
        value = out.get(key)
        if value:
            rel = os.path.relpath(value, PROJECT_ROOT)
            if not rel.startswith(os.path.join(os.pardir, os.pardir)):
                out[key] = rel
    return out


def settings_of(run: Run) -> tuple[object, ...]:
    return tuple(run.get(k, SETTINGS_BEFORE.get(k)) for k in SETTINGS)


def _report_order(run: Run) -> tuple[str, str, Any, Any]:
    return (
        str(run.get("test_set")),
        str(run.get("ground_gap", "")),
        run.get("clients", 0),
        run.get("alpha", 0),
    )


def add_run(path: Path, run: Run) -> Path:
    """Add ``run`` to the report, replacing an earlier run with the same settings."""
    runs = merged_runs(path, [run], same=settings_of, order=_report_order)
    return write_report(path, {"runs": runs})
