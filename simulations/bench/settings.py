"""What each benchmark runs with: a ``RunConfig`` and the bench's own few options.

A bench's run config is ``RunConfig()`` with the bench's settings on top, and only the ones
listed here (``FEDERATED``, ``DISTILL`` ...: each changes the config below it). Each run of a
bench then gets the keys the bench sets itself (``*_RUN`` and the per-run changes of its
``config`` method), which ``--set`` cannot change (``cli/bench_flags.py`` says why). Every
option that is not a run-config key has its one default here too, as a field of the bench's
dataclass. Plain data and cheap to import: ``cli/bench.py`` shows these defaults and
``cli/bench_args.py`` merges the flags and ``--set`` over them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import RunConfig
from common.errors import ConfigError, SkydistillError
from common.fleet.scenario import load_scenario
from simulations.bench.search_space import FAMILY, SEARCH, SearchPoint

DEFAULT_OUT = Path("bench/out")

# Every federated method of bench distill; bench robust and bench fleet start from it too.
FEDERATED: dict[str, Any] = {
    "fraction-train": 0.1,
    "reference-per-round": 500,
    "aggregation": "class-weighted",
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
DISTILL: dict[str, Any] = {"num-clients": 100, "alpha": 0.1, "num-rounds": 30}
# The regime where the clients' knowledge changes the global student (docs/distillation.md):
# class statistics in the ground-gap partition. There the attackers lie in the labels of
# their statistics (clients/attacks.py), claiming attack-scale times their tiles: without
# inflation no attack costs the mean 2 points of the targets (docs/robustness.md). 20 clients
# a round, so that most have sent their statistics within the 10 rounds (num-rounds' default);
# the sleeper turns
# after round 3 (attack-after's default).
ROBUST: dict[str, Any] = {
    "num-clients": 100,
    "alpha": 0.1,
    "archive-gap": "3:0.05",
    "fraction-train": 0.2,
    "attack": "lma",
    "attack-scale": 10.0,
    # every client a tiny student, as bench distill's (d): the same global student (85.2 %
    # with each role's student too), and the ground computes one backbone's features a run
    "student": "tiny",
}
# Small and quick: a tiny global student that starts untrained, so the curve shows how fast
# the federation's knowledge reaches it; fewer reference tiles per round.
FLEET: dict[str, Any] = {
    "scenario": "leo50",
    "global-student": "tiny",
    "global-pretrain-epochs": 0,
    "reference-per-round": 300,
    "metrics-address": "",
    "metrics-linger": 0.0,
}
# Targets per client round: 2 training steps of 64 tiles.
# A round's messages go to Flower a few per actor at a time (server/dispatch.py): at 10,000
# registered clients the simulation engine's link-state scans cost O(nodes x messages in
# flight). The bench runs one actor per core (client-resources-num-cpus = 1).
MESSAGES_PER_ACTOR = 4
SCALE: dict[str, Any] = {
    "num-rounds": 3,
    "shard-size": 50,
    "reference-per-round": 100,
    "max-in-flight": MESSAGES_PER_ACTOR * (os.cpu_count() or 1),
}

# Set on every run of a bench, whatever the bench's run config says.
NO_EXPORTER: dict[str, Any] = {"metrics-address": "", "metrics-linger": 0.0}
DISTILL_RUN: dict[str, Any] = {**NO_EXPORTER, "evaluate-every": 0}  # it scores clients itself
ROBUST_RUN: dict[str, Any] = dict(NO_EXPORTER)
SCALE_RUN: dict[str, Any] = {**NO_EXPORTER, "evaluate-every": 0}  # it times training only


def federated_defaults() -> RunConfig:
    """The run config of bench distill's federated methods, before its partition settings."""
    return RunConfig().with_values(FEDERATED)


def distill_defaults() -> RunConfig:
    return federated_defaults().with_values(DISTILL)


def robust_defaults() -> RunConfig:
    return federated_defaults().with_values(ROBUST)


def fleet_defaults() -> RunConfig:
    return federated_defaults().with_values(FLEET)


def scale_defaults() -> RunConfig:
    return RunConfig().with_values(SCALE)


@dataclass(frozen=True)
class DistillBench:
    base: RunConfig = field(default_factory=distill_defaults)
    out: Path = DEFAULT_OUT
    search_rounds: int = 0  # rounds per FedAvg search point; 0: all of the base's rounds
    centralized_epochs: int = 10
    search: tuple[SearchPoint, ...] = SEARCH
    family: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(FAMILY))

    def config(self, **overrides: Any) -> RunConfig:
        """A federated method's run config: the base, what the bench sets, ``overrides``."""
        test_dir = str(Path(self.base.test_dir).resolve()) if self.base.test_dir else ""
        return self.base.with_values({"test-dir": test_dir, **DISTILL_RUN, **overrides})

    @property
    def test_set(self) -> str:
        return str(Path(self.base.test_dir)) if self.base.test_dir else "internal"

    @property
    def work_name(self) -> str:
        """The invocation's folder under ``out``: one per partition."""
        cfg = self.base
        gap = f"-gap{cfg.archive_gap.replace(':', '_')}" if cfg.archive_gap else ""
        return f"distill-a{cfg.alpha:g}-c{cfg.num_clients}-s{cfg.seed}{gap}"


# bench robust: every attack (clients/attacks.py), under each rule (the mean first)
# (the strongest in the offline replay first: an interrupted invocation has measured them)
ROBUST_ATTACKS = ("lma", "sleeper", "inverted", "cpa", "label-flip", "mixed", "random", "constant")
ROBUST_RULES = ("mean", "trimmed-mean", "median", "history")


@dataclass(frozen=True)
class RobustBench:
    base: RunConfig = field(default_factory=robust_defaults)
    attackers: int = 20  # Byzantine clients among the base's num-clients
    rule: str = "trimmed-mean"  # the robust rule of ``attacked_robust`` (the base's attack)
    out: Path = DEFAULT_OUT
    attacks: tuple[str, ...] = ROBUST_ATTACKS
    rules: tuple[str, ...] = ROBUST_RULES

    def __post_init__(self) -> None:
        if not 0 <= self.attackers < self.base.num_clients:
            raise ConfigError(
                f"attackers must be in [0, {self.base.num_clients}), got {self.attackers}"
            )
        unknown = sorted(set(self.attacks) - set(ROBUST_ATTACKS))
        if unknown or not self.attacks:
            named = ", ".join(unknown) or "(none)"
            raise ConfigError(f"attacks {named}: choose among {', '.join(ROBUST_ATTACKS)}")
        if self.rules[:1] != ("mean",) or not set(self.rules) <= set(ROBUST_RULES):
            raise ConfigError(f"rules must start with mean and be among {', '.join(ROBUST_RULES)}")
        if self.rule not in self.rules:
            raise ConfigError(f"rule {self.rule!r} is not among the rules run: {self.rules}")

    @property
    def attack_list(self) -> tuple[str, ...]:
        """The attacks run: ``attacks``, with the base's own attack (the report's first keys)."""
        return tuple(dict.fromkeys((*self.attacks, self.base.attack)))

    def config(self, **overrides: Any) -> RunConfig:
        return self.base.with_values({**ROBUST_RUN, **overrides})


@dataclass(frozen=True)
class FleetBench:
    base: RunConfig = field(default_factory=fleet_defaults)
    hours: float = 96.0  # simulated horizon of the synchronous run
    aware_hours: float = 24.0  # simulated horizon of the contact-aware run
    target: float = 0.75
    per_round: int = 7  # clients that get work in a round, at most
    out: Path = DEFAULT_OUT

    def config(self, schedule: str, rounds: int = 1) -> RunConfig:
        """One schedule's run config over the base's scenario (which sets the client count)."""
        scenario = load_scenario(self.base.scenario)
        return self.base.with_values(
            {
                "scenario": str(scenario.path),  # absolute: the SuperLink runs elsewhere
                "schedule": schedule,
                "num-clients": scenario.num_clients,
                "fraction-train": min(1.0, self.per_round / scenario.num_clients),
                "min-train-clients": min(2, self.per_round),
                "num-rounds": rounds,
            }
        )


@dataclass(frozen=True)
class ScaleBench:
    base: RunConfig = field(default_factory=scale_defaults)
    clients: tuple[int, ...] = (1_000, 10_000)  # the fleet sizes swept (the base's is unused)
    per_round: int = 100
    out: Path = DEFAULT_OUT
    work: Path | None = None  # run folders (default: OUT/scale-work)
    sample_interval: float = 0.5
    # Flower's processes (SuperLink, SuperExec, flwr-simulation) run at this niceness once
    # Ray runs, below the actors (simulations/bench/priority.py); 0: at the bench's own
    flower_niceness: int = 19

    def config(self, clients: int, folder: Path) -> RunConfig:
        """The run config of the fleet size ``clients``, tracing into ``folder``."""
        if not 1 <= self.per_round <= clients:
            raise SkydistillError(f"per-round must be in 1..{clients}, got {self.per_round}")
        return self.base.with_values(
            {
                "num-clients": clients,
                "fraction-train": self.per_round / clients,
                "min-train-clients": self.per_round,
                **SCALE_RUN,
                "trace-dir": str(folder / "trace"),
            }
        )


@dataclass(frozen=True)
class OnboardBench:
    base: RunConfig = field(default_factory=RunConfig)
    out: Path = DEFAULT_OUT
    students: Path | None = None  # folder of student files; else the pre-installed students
    runs: int = 200  # timed single-tile runs
    warmup: int = 20
    batch_size: int = 256
    throughput_seconds: float = 2.0  # least time spent timing batches per model and format
    test_limit: int | None = None
    calibration: int = 256
    threads: int = 1
