"""The methods of ``bench distill`` on one prepared partition, each measured as a report entry.

:class:`Methods` prepares the ground segment once (teacher, global and pre-installed students,
all cached) and measures (a) the teacher, (b) the centralised tiny student, (d) and (e)
federated distillation and the no-client control; (c), the FedAvg family, is searched in
``simulations/bench/fedavg_search.py`` through :meth:`Methods.federated`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clients.storage import latest_student
from common.config import RunConfig
from common.models import build_model, count_parameters
from common.partition import scarce_classes, split_holdout
from common.preinstalled import preinstalled_student
from common.student_file import load_student
from common.training import TrainSettings, accuracy, fit, predict_proba
from server.fedavg import GLOBAL_MODEL_FILE
from server.global_student import GLOBAL_STUDENT_FILE
from server.ground import GroundSegment, prepare
from simulations.bench.measure import (
    ClientScores,
    client_cost,
    method_entry,
    round_accuracies,
    score_clients,
    traffic,
)
from simulations.bench.settings import DistillBench
from simulations.simulate import SimulationLink, with_paths

log = logging.getLogger(__name__)

DISTIL_CACHE = "distil-cache"  # in the work folder: the global student's round updates


class Methods:
    def __init__(self, bench: DistillBench) -> None:
        self.bench = bench
        self.out = bench.out.resolve()
        self.work = self.out / bench.work_name
        # The global student's round updates, shared by (d), (e) and the control where their
        # inputs coincide (server/distil_cache.py); this invocation's only: emptied first.
        self.distil_cache = self.work / DISTIL_CACHE
        shutil.rmtree(self.distil_cache, ignore_errors=True)
        self.cfg = with_paths(bench.config(**self.shared()), self.work)
        torch.set_num_threads(os.cpu_count() or 1)
        start = time.perf_counter()
        self.ground: GroundSegment = prepare(self.cfg)
        self.prepare_seconds = time.perf_counter() - start
        self.fed = self.ground.fed
        self.test = self.fed.test_split()
        self.holdouts = [
            self.fed.client_splits(k, self.cfg.holdout_fraction, self.cfg.seed)[1]
            for k in range(self.cfg.num_clients)
        ]
        self.scarce = scarce_classes(self.fed.arrays.labels, self.cfg.split_spec())
        # what each client starts from: its architecture's pre-installed student
        self.start = dict(self.ground.preinstalled_accuracy)

    def shared(self) -> dict[str, Any]:
        """Run-config values every method of this invocation shares."""
        return {"distil-cache": str(self.distil_cache)}

    def scarce_accuracy(self, model: nn.Module) -> float | None:
        """Mean test recall over the classes scarce at the ground (None without a gap)."""
        if not len(self.scarce):
            return None
        pred = predict_proba(model, self.test.x).argmax(1)
        y = self.test.y.numpy()
        return float(np.mean([(pred[y == c] == c).mean() for c in self.scarce]))

    def gain_over_start(self, scores: ClientScores, cfg: RunConfig) -> float:
        """Mean over clients of the deployed model's accuracy minus its starting model's (the
        pre-installed student of its architecture under ``cfg``)."""
        starts = [self.start[cfg.arch_of(cfg.role_of(k))] for k in range(cfg.num_clients)]
        return scores.mean - float(np.mean(starts))

    def scores(self, model: nn.Module) -> ClientScores:
        """Every client deploying the one ``model`` (FedAvg's, the centralised one)."""
        return score_clients(self.cfg, self.test, lambda _k, _r: model, self.holdouts)

    def teacher(self) -> dict[str, Any]:
        teacher = self.ground.teacher
        acc = accuracy(teacher, self.test.x, self.test.y)
        return method_entry(
            acc,
            rounds=[acc],
            params={"teacher": count_parameters(teacher)},
            # Training the teacher only (~0 when cached); the whole ground preparation,
            # step by step, is the run's ``ground_seconds``.
            seconds=self.ground.seconds.get("teacher", 0.0),
            scarce_class_accuracy=self.scarce_accuracy(teacher),
            client_steps_per_round=0.0,
            client_seconds_per_round=0.0,
        )

    def centralized(self) -> dict[str, Any]:
        """The tiny student on the archive plus every client's training data, pooled."""
        fed, cfg = self.fed, self.cfg
        parts = [fed.partition.archive]
        for k in range(cfg.num_clients):
            parts.append(fed.partition.shards[k])
        pooled = np.concatenate(parts)
        holdout_ids = np.concatenate(
            [
                split_holdout(fed.partition.shards[k], cfg.holdout_fraction, cfg.seed, k)[1]
                for k in range(cfg.num_clients)
            ]
        )
        data = fed.split(np.setdiff1d(pooled, holdout_ids))
        model = build_model("tiny", fed.spec.num_bands, fed.num_classes, seed=cfg.seed)
        start = time.perf_counter()
        fit(
            model,
            TrainSettings(
                epochs=self.bench.centralized_epochs,
                batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate,
                seed=cfg.seed,
            ),
            data.x,
            data.y,
        )
        seconds = time.perf_counter() - start
        acc = accuracy(model, self.test.x, self.test.y)
        log.info("centralized tiny student on %d pooled tiles: %.4f", len(data), acc)
        scores = self.scores(model)
        return method_entry(
            acc,
            rounds=[acc],
            params={"tiny": count_parameters(model)},
            seconds=seconds,
            clients=scores,
            train_tiles=len(data),
            scarce_class_accuracy=self.scarce_accuracy(model),
            client_gain_over_start=self.gain_over_start(scores, self.bench.config(student="tiny")),
        )

    def ground_only(self) -> dict[str, Any]:
        """The global student's rounds without any client: targets = the teacher's labels."""
        # The ground segment's global student, pre-trained exactly as (d) and (e) start it;
        # this process never trains it otherwise (their rounds run in the ServerApp).
        student = self.ground.student
        start = time.perf_counter()
        rounds = self.ground.without_clients(self.cfg.num_rounds)
        return method_entry(
            rounds[-1],
            rounds=rounds,
            params={"global": count_parameters(student.model)},
            seconds=time.perf_counter() - start,
            scarce_class_accuracy=self.scarce_accuracy(student.model),
            client_steps_per_round=0.0,
            client_seconds_per_round=0.0,
            server_updates_reused=student.cache.hits if student.cache else 0,
        )

    def federated(
        self, sim: SimulationLink, name: str, rounds: int | None = None, **overrides: Any
    ) -> tuple[dict[str, Any], Path]:
        """One federated run in ``work/name`` with ``overrides``: its report, seconds and run
        config, and its folder."""
        out = self.work / name
        cfg = with_paths(
            self.bench.config(
                **self.shared(), **overrides, **({"num-rounds": rounds} if rounds else {})
            ),
            out,
        )
        log.info("%s: %d rounds of %s", name, cfg.num_rounds, cfg.method)
        start = time.perf_counter()
        report = sim.run(cfg, out, progress=False)
        return {"report": report, "seconds": time.perf_counter() - start, "cfg": cfg}, out

    def fedkd(self, sim: SimulationLink, name: str, student: str) -> dict[str, Any]:
        run, out = self.federated(sim, name, method="fedkd", student=student)
        cfg: RunConfig = run["cfg"]
        report = run["report"]
        students: dict[int, nn.Module] = {}
        shared: dict[str, nn.Module] = {}

        def model_of(k: int, role: str) -> nn.Module:
            path = latest_student(out, role, k)
            if path is not None:
                students[k] = load_student(path).build()
                return students[k]
            arch = cfg.arch_of(role)  # never sampled: deploys its pre-installed student
            if arch not in shared:
                shared[arch] = preinstalled_student(cfg, self.fed, arch)
            return shared[arch]

        scores = score_clients(cfg, self.test, model_of, self.holdouts)
        total, client_rounds = traffic(report)
        params = {
            role: count_parameters(build_model(cfg.arch_of(role), 3, 10)) for role in cfg.role_cycle
        }
        params["global"] = count_parameters(self.ground.student.model)
        return method_entry(
            float(report["final"]["global_accuracy"]),
            rounds=round_accuracies(report),
            params=params,
            seconds=run["seconds"],
            clients=scores,
            bytes_total=total,
            client_rounds=client_rounds,
            clients_trained=len(students),
            client_local_accuracy_by_role=scores.local_by_role,
            aggregation=cfg.aggregation,
            codec=cfg.codec,
            reference_per_round=cfg.reference_per_round,
            client_statistics=cfg.client_statistics,
            scarce_class_accuracy=self.scarce_accuracy(self.global_student(out, cfg)),
            client_gain_over_start=self.gain_over_start(scores, cfg),
            server_updates_reused=sum(bool(r.get("distil_reused")) for r in report["rounds"]),
            **client_cost(report),
        )

    def global_student(self, out: Path, cfg: RunConfig) -> nn.Module:
        """The distillation run's global student, as the ServerApp left it in ``out``."""
        model = build_model(cfg.global_student, self.fed.spec.num_bands, self.fed.num_classes)
        model.load_state_dict(torch.load(out / GLOBAL_STUDENT_FILE, weights_only=True))
        return model

    def global_model(self, out: Path) -> nn.Module:
        """The FedAvg run's global tiny model, as the ServerApp left it in ``out``."""
        model = build_model("tiny", self.fed.spec.num_bands, self.fed.num_classes)
        model.load_state_dict(torch.load(out / GLOBAL_MODEL_FILE, weights_only=True))
        return model
