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

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clients.app import latest_student
from common.atomic import atomic_write
from common.config import RunConfig
from common.federation import Federation, Split
from common.models import build_model, count_parameters
from common.partition import scarce_classes, split_holdout
from common.preinstalled import preinstalled_student
from common.settings import PROJECT_ROOT
from common.student_file import load_student
from common.training import TrainSettings, accuracy, fit, predict_proba
from server.app import GLOBAL_STUDENT_FILE
from server.fedavg import GLOBAL_MODEL_FILE
from server.ground import GroundSegment, prepare
from server.history import finite_json
from simulations.flower import SuperLink, write_connection
from simulations.simulate import run_federation, with_paths

log = logging.getLogger(__name__)

METHODS = ("teacher", "centralized", "fedavg", "fedkd", "fedkd_hetero", "ground_only")
REPORT = "distill.json"


@dataclass(frozen=True)
class SearchPoint:
    optimizer: str
    learning_rate: float
    batch_norm: str
    local_epochs: int = 1
    strategy: str = "FedAvg"
    proximal_mu: float = 0.0  # FedProx only
    server_eta: float = 0.0  # FedAdam only

    def overrides(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "fedavg-strategy": self.strategy,
            "fedavg-optimizer": self.optimizer,
            "fedavg-lr": self.learning_rate,
            "fedavg-bn": self.batch_norm,
            "fedavg-epochs": self.local_epochs,
        }
        if self.strategy == "FedProx":
            values["fedprox-mu"] = self.proximal_mu
        if self.strategy == "FedAdam":
            values["fedadam-eta"] = self.server_eta
        return values

    def with_strategy(self, strategy: str, value: float) -> SearchPoint:
        """This point's client settings under FedProx (``value`` = mu) or FedAdam (eta)."""
        if strategy == "FedProx":
            return replace(self, strategy=strategy, proximal_mu=value)
        return replace(self, strategy=strategy, server_eta=value)


# Small on purpose (each point is a Flower run over every round), wide enough to find a
# stable setting under label skew: plain and frozen batch-norm statistics, Adam and momentum
# SGD, two Adam rates, one and three local epochs. (SGD 1e-3 with frozen statistics and three
# epochs, searched before, scored 51-61 % and was dropped.)
SEARCH: tuple[SearchPoint, ...] = (
    SearchPoint("adam", 1e-4, "train"),
    SearchPoint("adam", 3e-4, "frozen"),
    SearchPoint("adam", 1e-4, "frozen"),
    SearchPoint("adam", 1e-4, "frozen", local_epochs=3),
    SearchPoint("sgd", 1e-3, "train"),
)
# FedProx and FedAdam search their own knob on FedAvg's chosen client settings: the proximal
# weight mu (Li et al. 2020 search 0.001-1), and the server rate eta (Reddi et al. 2021; a
# pre-trained start wants the low end, with Flower's tau = 1e-3).
FAMILY: dict[str, tuple[float, ...]] = {"FedProx": (0.01, 0.1), "FedAdam": (1e-3, 1e-2)}


@dataclass(frozen=True)
class DistillBench:
    clients: int = 100
    alpha: float = 0.1
    rounds: int = 30
    seed: int = 42
    test_dir: Path | None = None
    ground_gap: str = ""  # archive-gap of the partition ("3:0.05"), or none
    out: Path = Path("bench/out")
    search_rounds: int = 0  # rounds per FedAvg search point; 0: all of ``rounds``
    centralized_epochs: int = 10
    search: tuple[SearchPoint, ...] = SEARCH
    family: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(FAMILY))
    base: RunConfig = field(default_factory=RunConfig)

    def config(self, **overrides: Any) -> RunConfig:
        values = {
            **self.base.to_mapping(),
            "num-clients": self.clients,
            "alpha": self.alpha,
            "num-rounds": self.rounds,
            "seed": self.seed,
            "test-dir": str(self.test_dir.resolve()) if self.test_dir else "",
            "archive-gap": self.ground_gap,
            "metrics-address": "",
            "metrics-linger": 0.0,
            "evaluate-every": 0,
            **overrides,
        }
        return RunConfig.from_mapping(values)


def bench_defaults() -> RunConfig:
    """The run config the benchmark uses for every federated method."""
    return RunConfig.from_mapping(
        {
            **RunConfig().to_mapping(),
            "fraction-train": 0.1,
            "reference-per-round": 500,
            "aggregation": "class-weighted",
            "codec": "int8",
            # (d) and (e) train the same clients in each round: their per-role accuracies then
            # differ by the knowledge they received, not by who happened to be sampled.
            "sample-by": "client",
            # Clients keep the student after two distillation-only passes over the targets
            # (+0.6 / +0.7 points of client accuracy in (d) / (e) over 30 rounds at alpha 0.1;
            # docs/distillation.md). Only without class statistics.
            "client-digest-epochs": 2,
            # Clients send class statistics, fused at the ground by evidence, and deploy the
            # head the ground fits (docs/distillation.md, "Knowledge that a shard carries").
            "client-statistics": 1,
        }
    )


def _method(
    final: float,
    *,
    rounds: list[float],
    params: dict[str, int],
    seconds: float,
    clients: ClientScores | None = None,
    bytes_total: int = 0,
    client_rounds: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "final_accuracy": final,
        "client_accuracy_mean": clients.mean if clients else None,
        "client_local_accuracy_mean": clients.local_mean if clients else None,
        "client_accuracy_by_role": clients.by_role if clients else {},
        "params": params,
        "bytes_per_client_round": bytes_total / client_rounds if client_rounds else 0,
        "bytes_total": bytes_total,
        "seconds": seconds,
        "rounds": rounds,
        **extra,
    }


@dataclass(frozen=True)
class ClientScores:
    mean: float
    local_mean: float
    by_role: dict[str, float]
    local_by_role: dict[str, float]


def score_clients(
    cfg: RunConfig, fed: Federation, test: Split, model_of: Any, holdouts: list[Split]
) -> ClientScores:
    """Each client's deployable model on the common test set and on its own held-out split."""
    common: dict[str, list[float]] = {}
    local: dict[str, list[float]] = {}
    cache: dict[int, float] = {}
    for k in range(cfg.num_clients):
        role = cfg.role_of(k)
        model: nn.Module = model_of(k, role)
        key = id(model)
        if key not in cache:  # a shared model (FedAvg, never-trained clients) is scored once
            cache[key] = accuracy(model, test.x, test.y)
        common.setdefault(role, []).append(cache[key])
        if len(holdouts[k]):
            local.setdefault(role, []).append(accuracy(model, holdouts[k].x, holdouts[k].y))
    every = [a for v in common.values() for a in v]
    every_local = [a for v in local.values() for a in v]
    return ClientScores(
        mean=float(np.mean(every)),
        local_mean=float(np.mean(every_local)) if every_local else math.nan,
        by_role={r: float(np.mean(v)) for r, v in sorted(common.items())},
        local_by_role={r: float(np.mean(v)) for r, v in sorted(local.items())},
    )


def _round_accuracies(report: dict[str, Any]) -> list[float]:
    return [float(r["global_accuracy"]) for r in report["rounds"]]


def _client_cost(report: dict[str, Any]) -> dict[str, float]:
    """Training sample-steps and seconds per client-round (per valid reply)."""
    rounds = report["rounds"]
    replies = sum(int(r.get("clients_ok", 0)) for r in rounds)
    samples = sum(int(r.get("client_train_samples", 0)) for r in rounds)
    seconds = sum(float(r.get("client_seconds", 0.0)) for r in rounds)
    return {
        "client_steps_per_round": samples / replies if replies else 0.0,
        "client_seconds_per_round": seconds / replies if replies else 0.0,
    }


def _traffic(report: dict[str, Any]) -> tuple[int, int]:
    rounds = report["rounds"]
    total = sum(int(r["bytes_up"]) + int(r["bytes_down"]) for r in rounds)
    return total, sum(int(r["clients_selected"]) for r in rounds)


class Bench:
    def __init__(self, bench: DistillBench) -> None:
        self.bench = bench
        self.out = bench.out.resolve()
        gap = f"-gap{bench.ground_gap.replace(':', '_')}" if bench.ground_gap else ""
        self.work = self.out / f"distill-a{bench.alpha:g}-c{bench.clients}-s{bench.seed}{gap}"
        self.cfg = with_paths(bench.config(), self.work)
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

    def teacher(self) -> dict[str, Any]:
        teacher = self.ground.teacher
        acc = accuracy(teacher, self.test.x, self.test.y)
        return _method(
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
        scores = score_clients(cfg, fed, self.test, lambda _k, _r: model, self.holdouts)
        return _method(
            acc,
            rounds=[acc],
            params={"tiny": count_parameters(model)},
            seconds=seconds,
            clients=scores,
            train_tiles=len(data),
            scarce_class_accuracy=self.scarce_accuracy(model),
            client_gain_over_start=self.gain_over_start(scores, self.method_cfg("tiny")),
        )

    def ground_only(self) -> dict[str, Any]:
        """The global student's rounds without any client: targets = the teacher's labels."""
        # The ground segment's global student, pre-trained exactly as (d) and (e) start it;
        # this process never trains it otherwise (their rounds run in the ServerApp).
        student = self.ground.student
        start = time.perf_counter()
        rounds = self.ground.without_clients(self.cfg.num_rounds)
        return _method(
            rounds[-1],
            rounds=rounds,
            params={"global": count_parameters(student.model)},
            seconds=time.perf_counter() - start,
            scarce_class_accuracy=self.scarce_accuracy(student.model),
            client_steps_per_round=0.0,
            client_seconds_per_round=0.0,
        )

    def federated(
        self, link_home: Path, name: str, rounds: int | None = None, **overrides: Any
    ) -> tuple[dict[str, Any], Path]:
        out = self.work / name
        cfg = with_paths(
            self.bench.config(**overrides, **({"num-rounds": rounds} if rounds else {})), out
        )
        log.info("%s: %d rounds of %s", name, cfg.num_rounds, cfg.method)
        start = time.perf_counter()
        report = run_federation(link_home, cfg, out, progress=False)
        return {"report": report, "seconds": time.perf_counter() - start, "cfg": cfg}, out

    def fedavg(self, link_home: Path) -> dict[str, Any]:
        """The FedAvg family: FedAvg's search, then FedProx's and FedAdam's on FedAvg's chosen
        client settings; the member with the best validation accuracy is the reported
        baseline, the other two go under its ``fedavg_family``."""
        fedavg, chosen = self._search(link_home, "fedavg", self.bench.search)
        members = {"FedAvg": fedavg}
        for strategy, values in self.bench.family.items():
            points = tuple(chosen.with_strategy(strategy, v) for v in values)
            members[strategy], _ = self._search(link_home, strategy.lower(), points)
        best = max(members, key=lambda m: members[m]["search"]["validation_accuracy"])
        report = members.pop(best)
        report["fedavg_family"] = members
        log.info("FedAvg family: %s is the best baseline", best)
        return report

    def _search(
        self, link_home: Path, name: str, points: tuple[SearchPoint, ...]
    ) -> tuple[dict[str, Any], SearchPoint]:
        """Every point, scored on the clients' held-out splits; the chosen point's run over
        every round as a method entry, and the chosen point.

        With ``search_rounds`` 0 (the default) each point runs for all the rounds, so the
        point is chosen for the horizon it is reported at (a rate that looks best after five
        rounds can drift down over thirty) and the chosen point's run is the reported one."""
        cfg = self.cfg
        search_rounds = self.bench.search_rounds or cfg.num_rounds
        search: list[dict[str, Any]] = []
        runs: list[tuple[dict[str, Any], Path]] = []
        for i, point in enumerate(points):
            run, out = self.federated(
                link_home,
                f"{name}-search-{i}",
                rounds=search_rounds,
                method="fedavg",
                student="tiny",
                **point.overrides(),
            )
            model = self._global_model(out)
            # Scored on the clients' held-out splits, never on the test set.
            val = _pooled_accuracy(model, self.holdouts)
            search.append({**point.__dict__, "validation_accuracy": val, "seconds": run["seconds"]})
            runs.append((run, out))
            log.info("%s search %s: validation accuracy %.4f", point.strategy, point, val)
        best = max(range(len(search)), key=lambda i: search[i]["validation_accuracy"])
        chosen = points[best]
        if search_rounds == cfg.num_rounds:
            run, out = runs[best]
        else:
            run, out = self.federated(
                link_home, name, method="fedavg", student="tiny", **chosen.overrides()
            )
        model = self._global_model(out)
        scores = score_clients(cfg, self.fed, self.test, lambda _k, _r: model, self.holdouts)
        total, client_rounds = _traffic(run["report"])
        entry = _method(
            accuracy(model, self.test.x, self.test.y),
            strategy=chosen.strategy,
            scarce_class_accuracy=self.scarce_accuracy(model),
            client_gain_over_start=self.gain_over_start(scores, self.method_cfg("tiny")),
            **_client_cost(run["report"]),
            rounds=_round_accuracies(run["report"]),
            params={"tiny": count_parameters(model)},
            seconds=run["seconds"],
            clients=scores,
            bytes_total=total,
            client_rounds=client_rounds,
            search={
                "rounds": search_rounds,
                "scored_on": "clients' pooled held-out splits",
                "points": search,
                "chosen": chosen.__dict__,
                "validation_accuracy": search[best]["validation_accuracy"],
                "local_epochs": chosen.local_epochs,
            },
        )
        return entry, chosen

    def fedkd(self, link_home: Path, name: str, student: str) -> dict[str, Any]:
        run, out = self.federated(link_home, name, method="fedkd", student=student)
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

        scores = score_clients(cfg, self.fed, self.test, model_of, self.holdouts)
        total, client_rounds = _traffic(report)
        params = {
            role: count_parameters(build_model(cfg.arch_of(role), 3, 10)) for role in cfg.role_cycle
        }
        params["global"] = count_parameters(self.ground.student.model)
        return _method(
            float(report["final"]["global_accuracy"]),
            rounds=_round_accuracies(report),
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
            scarce_class_accuracy=self.scarce_accuracy(self._global_student(out, cfg)),
            client_gain_over_start=self.gain_over_start(scores, cfg),
            **_client_cost(report),
        )

    def method_cfg(self, student: str) -> RunConfig:
        return self.bench.config(student=student)

    def _global_student(self, out: Path, cfg: RunConfig) -> nn.Module:
        model = build_model(cfg.global_student, self.fed.spec.num_bands, self.fed.num_classes)
        model.load_state_dict(torch.load(out / GLOBAL_STUDENT_FILE, weights_only=True))
        return model

    def _global_model(self, out: Path) -> nn.Module:
        model = build_model("tiny", self.fed.spec.num_bands, self.fed.num_classes)
        model.load_state_dict(torch.load(out / GLOBAL_MODEL_FILE, weights_only=True))
        return model


def _pooled_accuracy(model: nn.Module, splits: list[Split]) -> float:
    xs = [s.x for s in splits if len(s)]
    ys = [s.y for s in splits if len(s)]
    return accuracy(model, torch.cat(xs), torch.cat(ys))


def run_bench(bench: DistillBench) -> dict[str, Any]:
    """Run every method once; merge the run into ``out/distill.json`` and return the run."""
    started = time.perf_counter()
    b = Bench(bench)
    methods: dict[str, Any] = {"teacher": b.teacher(), "centralized": b.centralized()}
    home = b.work / "flwr-home"
    with SuperLink(home) as link:
        write_connection(home, link.address)
        methods["fedavg"] = b.fedavg(home)
        methods["fedkd"] = b.fedkd(home, "fedkd", student="tiny")
        methods["fedkd_hetero"] = b.fedkd(home, "fedkd_hetero", student="")
    methods["ground_only"] = b.ground_only()
    control = methods["ground_only"]["final_accuracy"]
    for name in ("fedkd", "fedkd_hetero"):
        methods[name]["gain_over_control"] = methods[name]["final_accuracy"] - control
    run = {
        "alpha": bench.alpha,
        "clients": bench.clients,
        "rounds": bench.rounds,
        "seed": bench.seed,
        "test_set": str(bench.test_dir) if bench.test_dir else "internal",
        "ground_gap": bench.ground_gap,
        "scarce_classes": [b.fed.spec.classes[c] for c in b.scarce],
        "config": portable_paths(b.cfg.to_mapping()),
        "wall_seconds": time.perf_counter() - started,
        "ground_seconds": {"total": b.prepare_seconds, **b.ground.seconds},
        "methods": methods,
    }
    write_report(bench.out / REPORT, run)
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


def write_report(path: Path, run: dict[str, Any]) -> Path:
    """Add ``run`` to the report, replacing an earlier run with the same settings."""
    runs: list[dict[str, Any]] = []
    if path.is_file():
        try:
            runs = list(json.loads(path.read_text()).get("runs", []))
        except (OSError, ValueError):
            log.warning("%s is unreadable: starting a new report", path)
    same = ("alpha", "clients", "rounds", "seed", "test_set", "ground_gap")
    defaults = {"ground_gap": ""}  # runs written before the key existed had no gap
    runs = [
        r
        for r in runs
        if any(r.get(k, defaults.get(k)) != run.get(k, defaults.get(k)) for k in same)
    ] + [run]
    runs.sort(
        key=lambda r: (
            str(r.get("test_set")),
            str(r.get("ground_gap", "")),
            r.get("clients", 0),
            r.get("alpha", 0),
        )
    )
    text = json.dumps({"runs": finite_json(runs)}, indent=2).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: fh.write(text))
