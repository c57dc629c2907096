"""Integration: ``bench distill`` end to end on fixture data, through a real SuperLink."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations.bench.distill import add_run, portable_paths, run_bench
from simulations.bench.distill_methods import Methods
from simulations.bench.docs import render_docs
from simulations.bench.fedavg_search import fedavg_family
from simulations.bench.search_space import SEARCH
from simulations.bench.settings import DistillBench, federated_defaults
from simulations.simulate import simulation_link
from tests.simulations.bench.bench_config import on_fixture_data

CHECK = PROJECT_ROOT.parent / "shared" / "tools" / "check_report.py"


def _base(fixture_data: Path) -> RunConfig:
    """The benchmark's run config, shrunk to the fixture data: 4 clients, alpha 0.5, 2 rounds."""
    small = {"num-clients": 4, "alpha": 0.5, "num-rounds": 2}
    return on_fixture_data(federated_defaults(), fixture_data).with_values(small)


@pytest.mark.integration
def test_bench_distill_writes_a_valid_report_plots_and_docs(
    fixture_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    bench = DistillBench(
        out=out,
        centralized_epochs=1,
        search=SEARCH[:2],
        # FedProx stands for the family: FedAdam runs through the same loop (its strategy
        # and aggregation are tested in tests/server/test_fedavg.py).
        family={"FedProx": (0.1,)},
        base=_base(fixture_data),
    )
    run = run_bench(bench)
    report = json.loads((out / "distill.json").read_text())
    assert report["runs"] == [json.loads(json.dumps(run))]
    methods = run["methods"]
    assert set(methods) == {
        "teacher",
        "centralized",
        "fedavg",
        "fedkd",
        "fedkd_hetero",
        "ground_only",
    }
    assert len(methods["ground_only"]["rounds"]) == 2
    assert run["ground_gap"] == "" and run["scarce_classes"] == []
    for name in ("fedkd", "fedkd_hetero"):  # read against the control without clients
        gain = methods[name]["final_accuracy"] - methods["ground_only"]["final_accuracy"]
        assert methods[name]["gain_over_control"] == gain
        assert methods[name]["client_statistics"] == 1
    for name in ("fedavg", "fedkd", "fedkd_hetero"):  # and each client against its start
        assert -1.0 <= methods[name]["client_gain_over_start"] <= 1.0
        assert methods[name]["client_seconds_per_round"] > 0
    assert methods["fedavg"]["client_steps_per_round"] > 0
    # (c) is the best of the FedAvg family by validation accuracy; the others sit under it
    fedavg = methods["fedavg"]
    family = {fedavg["strategy"], *fedavg["fedavg_family"]}
    assert family == {"FedAvg", "FedProx"}
    validation = {s: m["search"]["validation_accuracy"] for s, m in fedavg["fedavg_family"].items()}
    assert fedavg["search"]["validation_accuracy"] >= max(validation.values())
    for strategy, member in fedavg["fedavg_family"].items():
        assert member["search"]["chosen"]["strategy"] == strategy
        assert 0 <= member["final_accuracy"] <= 1 and member["bytes_total"] > 0
    # statistics mode: clients answer with forward passes only, no training step
    assert methods["fedkd"]["client_steps_per_round"] == 0
    assert methods["teacher"]["scarce_class_accuracy"] is None
    assert methods["ground_only"]["bytes_total"] == 0
    for name in ("fedavg", "fedkd", "fedkd_hetero"):
        assert len(methods[name]["rounds"]) == 2
        assert methods[name]["bytes_total"] > 0
    # Weights travel in FedAvg; class statistics (once per client) and a head in distillation.
    assert (
        methods["fedavg"]["bytes_per_client_round"]
        > 20 * methods["fedkd"]["bytes_per_client_round"]
    )
    assert set(methods["fedkd_hetero"]["client_accuracy_by_role"]) == {
        "satellite",
        "drone",
        "ground-station",
    }
    assert methods["fedkd"]["params"]["drone"] == methods["fedkd"]["params"]["satellite"]
    assert methods["fedkd_hetero"]["params"]["drone"] > methods["fedkd"]["params"]["drone"]
    members = {fedavg["strategy"]: fedavg, **fedavg["fedavg_family"]}
    assert [len(members[s]["search"]["points"]) for s in ("FedAvg", "FedProx")] == [2, 1]
    work = out / "distill-a0.5-c4-s42"
    # Each point ran for every round; the chosen point's run is the reported one.
    assert methods["fedavg"]["search"]["rounds"] == 2
    assert not (work / "fedavg").exists()
    # Each trained client left a student file that alone is enough to use it.
    assert list((work / "fedkd_hetero" / "students").glob("*.pt"))

    # sample-by=client: (d) and (e) trained the same clients in the same rounds, although
    # Flower gave their nodes other ids.
    def trained(name: str) -> set[str]:
        """'<partition>-r<round>' of every student file (role names may hold a hyphen)."""
        files = (work / name / "students").glob("*.pt")
        return {"-".join(p.stem.rsplit("-", 2)[1:]) for p in files}

    assert trained("fedkd") == trained("fedkd_hetero")
    assert len(trained("fedkd")) >= 2

    plots = [out / f"distill-a0.5-{kind}.png" for kind in ("accuracy", "bytes")]
    assert all(p.stat().st_size > 1000 for p in plots)  # drawn by run_bench
    docs = render_docs(out, tmp_path / "docs" / "benchmarks.md")
    text = docs.read_text()
    assert "| (d) FedKD, tiny |" in text and "FedAvg search" in text
    assert "FedProx search" in text
    assert (tmp_path / "docs" / "img" / "distill-a0.5-accuracy.png").is_file()
    if CHECK.is_file():
        done = subprocess.run(
            [sys.executable, str(CHECK), str(out / "distill.json")], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_a_short_fedavg_search_runs_the_chosen_point_again_over_every_round(
    fixture_data: Path, tmp_path: Path
) -> None:
    bench = DistillBench(
        search_rounds=1,
        out=tmp_path / "out",
        search=SEARCH[:1],
        family={},
        base=_base(fixture_data),
    )
    b = Methods(bench)
    with simulation_link(b.work / "flwr-home") as sim:
        fedavg = fedavg_family(b, sim)
    search = fedavg["search"]
    assert search["rounds"] == 1
    assert len(search["points"]) == 1
    assert search["chosen"] == SEARCH[0].__dict__
    # The point ran one round; the reported run is a separate run over both rounds.
    assert len(fedavg["rounds"]) == 2
    assert (b.work / "fedavg").is_dir()
    assert fedavg["bytes_total"] > 0


def test_report_keeps_other_runs_and_replaces_the_same_settings(tmp_path: Path) -> None:
    path = tmp_path / "distill.json"
    base = {"clients": 100, "rounds": 30, "seed": 42, "test_set": "internal", "methods": {}}
    add_run(path, {**base, "alpha": 0.1, "wall_seconds": 1.0})
    add_run(path, {**base, "alpha": 0.5, "wall_seconds": 2.0})
    add_run(path, {**base, "alpha": 0.1, "wall_seconds": 3.0})
    runs = json.loads(path.read_text())["runs"]
    assert [(r["alpha"], r["wall_seconds"]) for r in runs] == [(0.1, 3.0), (0.5, 2.0)]
    # a run with a ground gap is another setting; one without is the same as an older run
    add_run(path, {**base, "alpha": 0.1, "ground_gap": "3:0.05", "wall_seconds": 4.0})
    add_run(path, {**base, "alpha": 0.5, "ground_gap": "", "wall_seconds": 5.0})
    runs = json.loads(path.read_text())["runs"]
    assert sorted((r["alpha"], r.get("ground_gap", ""), r["wall_seconds"]) for r in runs) == [
        (0.1, "", 3.0),
        (0.1, "3:0.05", 4.0),
        (0.5, "", 5.0),
    ]


def test_report_names_folders_relative_to_the_repository() -> None:
    config = portable_paths(
        {
            "data-dir": str(PROJECT_ROOT.parent / "shared" / "data"),
            "out-dir": str(PROJECT_ROOT / "bench" / "out" / "distill-a0.1-c100-s42"),
            "test-dir": "/elsewhere/entirely/test",
            "seed": 42,
        }
    )
    assert config == {
        "data-dir": "../shared/data",
        "out-dir": "bench/out/distill-a0.1-c100-s42",
        "test-dir": "/elsewhere/entirely/test",  # far from the repository: kept as given
        "seed": 42,
    }
