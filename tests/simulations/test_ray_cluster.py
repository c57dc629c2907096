"""Integration: a simulation attached to a Ray cluster that the test starts with deploy/ray/head.sh.

The cluster runs on 127.0.0.1 with its own temp folder (so no other Ray user on the machine
finds it), the simulation joins it with ``--ray-address HOST:PORT``, and the cluster's own
logs prove that the virtual clients ran as actors there. Ray is stopped by PID at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from common.config import RunConfig
from common.processes import free_port
from common.settings import PROJECT_ROOT
from simulations.simulate import simulate

pytestmark = pytest.mark.integration  # starts real processes

HEAD = PROJECT_ROOT / "deploy" / "ray" / "head.sh"
RAY = Path(sys.executable).parent / "ray"


def _cluster_processes(temp: Path) -> list[psutil.Process]:
    """Every process of the cluster under ``temp``: those naming it, and their descendants."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(temp) in cmdline:
            found[proc.pid] = proc
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    found[child.pid] = child
    found.pop(os.getpid(), None)
    return list(found.values())


def _stop(temp: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs = _cluster_processes(temp)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        psutil.wait_procs(procs, timeout=10)


@contextlib.contextmanager
def ray_head(port: int) -> Iterator[Path]:
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray puts sockets here
    env = {
        **os.environ,
        "RAY_BIN": str(RAY),
        "RAY_PORT": str(port),
        "RAY_NUM_CPUS": "2",
        "RAY_TEMP_DIR": str(temp),
    }
    try:
        done = subprocess.run(
            ["bash", str(HEAD)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield temp
    finally:
        _stop(temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_simulation_runs_on_a_ray_cluster_started_beforehand(
    fixture_data: Path, tmp_path: Path
) -> None:
    port = free_port()
    with ray_head(port) as temp:
        assert any("raylet" in " ".join(p.cmdline()) for p in _cluster_processes(temp))
        cfg = RunConfig(
            data_dir=str(fixture_data),
            num_clients=3,
            num_rounds=1,
            fraction_train=1.0,
            reference_per_round=8,
            teacher_epochs=1,  # one epoch per ground model: the other tests' cache
            preinstall_epochs=1,
            global_pretrain_epochs=1,
            metrics_address="",
            metrics_linger=0.0,
            dropout="drone=1",  # the drone always fails: an error reply, counted as failed
            straggler_seconds="satellite=1",
        )
        started = time.time()
        report = simulate(cfg, tmp_path / "run", progress=False, ray_address=f"127.0.0.1:{port}")
        assert report["final"]["rounds_completed"] == 1
        (rnd,) = report["rounds"]
        assert (rnd["clients_ok"], rnd["clients_failed"]) == (2, 1)
        errors = [r["error"] for r in rnd["replies"] if "error" in r]
        assert len(errors) == 1 and "dropout: client 1 (drone) dropped out of round 1" in errors[0]
        # The cluster's own logs hold the workers that ran the virtual clients as actors.
        logs = temp / "session_latest" / "logs"
        actors = [
            path
            for path in logs.glob("worker-*.out")
            if path.stat().st_mtime >= started - 1 and "ClientAppActor" in path.read_text()
        ]
        assert actors, f"no ClientAppActor worker in {logs}: the clients ran elsewhere"
    assert _cluster_processes(temp) == []
