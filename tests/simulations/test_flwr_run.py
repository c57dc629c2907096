"""Integration: the ServerApp run as `flwr run .` runs it (no `skydistill simulate` around it).

One real SuperLink in simulation mode, 2 SuperNodes for num-clients = 3: the ServerApp warns
about the unused shard, writes accuracy.png and server.log itself, and the run's Flower log
streamed into run.log is plain text with one line per event.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations.flower import stream_logs, submit_run, wait_for_run
from simulations.simulate import COMPLETED, simulation_link, write_run_config

pytestmark = pytest.mark.integration  # starts real processes


def test_flwr_run_with_fewer_supernodes_warns_and_leaves_plot_and_logs(
    fixture_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    cfg = RunConfig(
        data_dir=str(fixture_data),
        out_dir=str(out),
        num_clients=3,
        num_rounds=1,
        fraction_train=1.0,
        reference_per_round=8,
        teacher_epochs=1,  # one epoch per ground model: the other integration tests' cache
        global_pretrain_epochs=1,
        preinstall_epochs=1,
        metrics_address="",  # no exporter: other runs on this machine may hold the port
        metrics_linger=0.0,
        max_in_flight=1,  # the window wraps Flower's grid only after the SuperNode check
    )
    home = tmp_path / "flwr-home"
    with simulation_link(home, env={"RAY_ADDRESS": "local"}):
        run_id = submit_run(
            home,
            PROJECT_ROOT,
            write_run_config(cfg, out / "run-config.toml"),
            {"num-supernodes": 2, "client-resources-num-cpus": 1, "init-args-num-cpus": 2},
        )
        logs = stream_logs(home, run_id, out / "run.log")
        try:
            status = wait_for_run(home, run_id, poll=1.0, status_every=5.0, timeout=600.0)
        finally:
            logs.terminate()
    assert status == COMPLETED, (out / "run.log").read_text()[-3000:]
    assert (out / "accuracy.png").stat().st_size > 1000  # written by the ServerApp itself

    server_log = (out / "server.log").read_text()
    warning = "2 simulated SuperNodes for num-clients = 3"
    assert server_log.count(warning) == 1, server_log
    assert "the shard of client 2 is never used (1 of 3)" in server_log
    assert '--federation-config "num-supernodes=3"' in server_log
    assert "server.history: round 1: accuracy" in server_log
    assert "\x1b" not in server_log

    run_log = (out / "run.log").read_text()
    lines = run_log.splitlines()
    assert "\x1b" not in run_log
    assert sum("[ROUND 1/1]" in line for line in lines) == 1  # Flower's line, once
    assert sum(warning in line for line in lines) == 1  # the ServerApp's line, once
    assert sum("server.history: round 1: accuracy" in line for line in lines) == 1
    assert not any(
        "flwr federation" in line or "default simulated SuperNodes" in line for line in lines
    )
    assert not any(" DEBUG flwr" in line for line in lines)
