"""Each bench's run config is RunConfig's defaults with the bench's settings on top, in one
place, and every run of a bench gets exactly the config it got before (issue 21)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli import bench_flags
from cli.main import main
from common.config import RunConfig
from common.errors import ConfigError, SkydistillError
from simulations.bench import settings
from simulations.bench.settings import (
    ROBUST,
    ROBUST_ATTACKS,
    DistillBench,
    FleetBench,
    RobustBench,
    ScaleBench,
    federated_defaults,
)

LAYERS: list[tuple[str, Callable[[], RunConfig], dict[str, Any]]] = [
    ("FEDERATED", RunConfig, settings.FEDERATED),
    ("DISTILL", federated_defaults, settings.DISTILL),
    ("ROBUST", federated_defaults, settings.ROBUST),
    ("FLEET", federated_defaults, settings.FLEET),
    ("SCALE", RunConfig, settings.SCALE),
]


@pytest.mark.parametrize(("name", "below", "layer"), LAYERS, ids=[n for n, _, _ in LAYERS])
def test_a_bench_setting_changes_the_config_below_it(
    name: str, below: Callable[[], RunConfig], layer: dict[str, Any]
) -> None:
    """No setting repeats a default: each is a change, so each default lives in one place."""
    under = below().to_mapping()
    same = {k: v for k, v in layer.items() if under[k] == v}
    assert not same, f"{name} repeats the defaults below it: {same}"


def _changes(cfg: RunConfig) -> dict[str, Any]:
    default = RunConfig().to_mapping()
    return {k: v for k, v in cfg.to_mapping().items() if v != default[k]}


FEDERATED = {
    "fraction-train": 0.1,
    "reference-per-round": 500,
    "aggregation": "class-weighted",
    "sample-by": "client",
    "client-digest-epochs": 2,
    "client-statistics": 1,
}
NO_EXPORTER = {"metrics-address": "", "metrics-linger": 0.0}


def test_bench_distill_runs_its_methods_with_the_settings_it_always_had() -> None:
    bench = DistillBench()
    partition = {"num-clients": 100, "alpha": 0.1, "num-rounds": 30}
    assert _changes(bench.config()) == {**FEDERATED, **partition, **NO_EXPORTER}
    fedavg = bench.config(method="fedavg", student="tiny", **{"fedavg-lr": 3e-4})
    assert _changes(fedavg) == {
        **FEDERATED,
        **partition,
        **NO_EXPORTER,
        "method": "fedavg",
        "student": "tiny",
        "fedavg-lr": 3e-4,
    }
    assert bench.work_name == "distill-a0.1-c100-s42" and bench.test_set == "internal"


def test_bench_distill_resolves_its_test_folder_and_names_its_gap(tmp_path: Path) -> None:
    base = settings.distill_defaults().with_values(
        {"test-dir": f"{tmp_path}/", "archive-gap": "3:0.05"}
    )
    bench = DistillBench(base=base)
    assert bench.config().test_dir == str(tmp_path.resolve())
    assert bench.test_set == str(tmp_path)
    assert bench.work_name == "distill-a0.1-c100-s42-gap3_0.05"


def test_bench_robust_runs_in_the_regime_where_client_knowledge_counts() -> None:
    bench = RobustBench()
    # class statistics in the ground-gap partition, the attackers claiming 10 times their
    # tiles, without the exporter
    assert _changes(bench.config()) == {**FEDERATED, **ROBUST, **NO_EXPORTER}
    assert bench.config().client_statistics == 1 and bench.config().archive_gap == "3:0.05"
    run = bench.config(aggregation="median", attackers=0.2)
    assert (run.aggregation, run.attackers) == ("median", 0.2)
    assert (bench.attackers, bench.rule) == (20, "trimmed-mean")
    assert bench.attack_list == ROBUST_ATTACKS and bench.rules[0] == "mean"
    # the base's own attack is always run: the report's first keys are its
    only = RobustBench(attacks=("cpa",))
    assert only.attack_list == ("cpa", "lma")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attacks": ("bribe",)}, "attacks bribe"),
        ({"rules": ("median", "mean")}, "must start with mean"),
        ({"rules": ("mean", "median")}, "rule 'trimmed-mean' is not among"),
    ],
)
def test_bench_robust_refuses_attacks_and_rules_it_does_not_know(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        RobustBench(**options)


@pytest.mark.parametrize("attackers", [-1, 100, 101])
def test_bench_robust_needs_fewer_attackers_than_clients(attackers: int) -> None:
    with pytest.raises(ConfigError, match=r"attackers must be in \[0, 100\)"):
        RobustBench(attackers=attackers)


def test_bench_fleet_starts_from_the_federated_settings_on_its_scenario() -> None:
    bench = FleetBench()
    federated = {k: v for k, v in FEDERATED.items() if k != "reference-per-round"}
    assert bench.base.reference_per_round == 300  # RunConfig's, under bench distill's 500
    assert _changes(bench.base) == {
        **federated,
        "scenario": "leo50",
        "global-student": "tiny",
        "global-pretrain-epochs": 0,
        **NO_EXPORTER,
    }
    run = bench.config("synchronous", rounds=5)
    assert run.scenario.endswith("leo50.toml") and run.schedule == "synchronous"
    assert (run.num_rounds, run.min_train_clients) == (5, 2)
    assert run.fraction_train == pytest.approx(7 / run.num_clients)


def test_bench_scale_sweeps_fleet_sizes_over_its_own_settings(tmp_path: Path) -> None:
    bench = ScaleBench()
    assert bench.clients == (1_000, 10_000)
    assert _changes(bench.config(1_000, tmp_path)) == {
        "num-rounds": 3,
        "shard-size": 50,
        "reference-per-round": 100,
        "max-in-flight": settings.MESSAGES_PER_ACTOR * (os.cpu_count() or 1),  # 4 per actor
        "num-clients": 1_000,
        "fraction-train": 0.1,
        "min-train-clients": 100,
        "trace-dir": str(tmp_path / "trace"),
        **NO_EXPORTER,
    }
    with pytest.raises(SkydistillError, match="per-round must be in 1..50"):
        bench.config(50, tmp_path)


@pytest.mark.parametrize(
    ("name", "run", "fixed"),
    [
        ("distill", settings.DISTILL_RUN, bench_flags.DISTILL_FIXED),
        ("robust", settings.ROBUST_RUN, bench_flags.ROBUST_FIXED),
        ("scale", settings.SCALE_RUN, bench_flags.SCALE_FIXED),
    ],
)
def test_what_a_bench_sets_on_every_run_cannot_be_set(
    name: str, run: dict[str, Any], fixed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A --set of a key the bench overrides on each run would be lost: the command refuses it."""
    assert set(run) <= set(fixed)
    for key in run:
        assert main(["bench", name, "--set", f"{key}=1"]) == 2
        assert f"--set {key}=1: {fixed[key]}" in capsys.readouterr().err
