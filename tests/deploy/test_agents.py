"""Integration: edge agents on Flower's deployment engine, with TLS and node authentication.

Real processes on 127.0.0.1 only: a SuperLink (``flower-superlink``, deployment mode, TLS,
``--enable-supernode-auth``) and ``skydistill agent`` processes (each becomes a
``flower-supernode``) with their own data folders; all stopped by PID.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cli.agent import agent_argv
from clients.agent import AgentOptions, node_config, node_number, supernode_command
from clients.agent_process import _relay
from clients.local_data import inspect_folder
from common.bands import DATASETS
from common.config import RunConfig
from common.errors import ConfigError
from common.processes import descendants, free_port, is_alive, stop_tree
from common.settings import PROJECT_ROOT
from server.certs import make_certs
from server.history import REPORT_FILE
from simulations.deployment import ServerOptions, deployment_superlink, register_agent
from simulations.flower import SuperLink, run_status, submit_run
from simulations.simulate import COMPLETED, write_run_config
from tests.deploy.fleet import CLASSES, report_rounds, wait_for
from tests.shared_cache import session_cache

pytestmark = pytest.mark.timeout(900)

ROUND_TIMEOUT = 90.0
RGB_BANDS = ("B04", "B03", "B02")


@dataclass
class Fleet:
    root: Path
    link: SuperLink
    certs: Path
    data: Path  # the shared public archive (data root)
    procs: dict[str, subprocess.Popen[bytes]]

    def options(self, role: str, **kw: object) -> AgentOptions:
        folder = self.root / "private" / role
        if not folder.is_dir():
            for cls in CLASSES[role]:
                shutil.copytree(self.data / "eurosat-rgb" / cls, folder / cls)
        base: dict[str, object] = {
            "role": role,
            "data_dir": folder,
            "superlink": self.link.address,
            "root_certificates": self.certs / "ca.crt",
            "auth_key": self.certs / "agents" / role,
            "health_address": f"127.0.0.1:{free_port()}",
            "name": role,
            "state_dir": self.root / "state" / role,
            "runtime_port": free_port(),
        }
        base.update(kw)
        return AgentOptions(**base)  # type: ignore[arg-type]

    def start(self, key: str, opts: AgentOptions) -> subprocess.Popen[bytes]:
        log = (self.root / f"agent-{key}.log").open("ab")
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *agent_argv(opts)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
        )
        self.procs[key] = proc
        return proc

    def log(self, key: str) -> str:
        return (self.root / f"agent-{key}.log").read_text(errors="replace")

    def joined(self, key: str) -> bool:
        return "SuperNode ID" in self.log(key)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            stop_tree(proc)


def health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


@pytest.fixture(scope="module")
def fleet(fixture_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    # Module scope runs before the autouse cache fixture: give the SuperLink (and with it the
    # ServerApp) the same isolated cache as the agents, where the pre-installed students are.
    mp = pytest.MonkeyPatch()
    mp.setenv("SKYDISTILL_CACHE", str(session_cache(tmp_path_factory)))
    with ExitStack() as stack:
        stack.callback(mp.undo)
        certs = make_certs(root / "certs", agents=[*CLASSES, "rogue"]).folder
        home = root / "flwr-home"
        opts = ServerOptions(home=home, host="127.0.0.1", port=free_port(), certs=certs)
        link = stack.enter_context(deployment_superlink(opts))
        f = Fleet(root, link, certs, fixture_data, {})
        stack.callback(f.stop_all)
        for role in CLASSES:
            register_agent(opts.home, certs / "agents" / f"{role}.pub", name=role)
        yield f


def test_data_check_and_node_config(fixture_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "private"
    shutil.copytree(fixture_data / "eurosat-rgb" / "Forest", folder / "Forest")
    (folder / "Forest" / "broken.jpg").write_bytes(b"not a raster")
    report = inspect_folder(folder, DATASETS["rgb"])
    assert (report.tiles, report.per_class, report.bands) == (12, {"Forest": 12}, RGB_BANDS)
    assert [path for path, _ in report.skipped] == ["Forest/broken.jpg"]
    assert "1 files skipped" in report.summary() and "broken.jpg" in report.summary()
    opts = AgentOptions(role="drone", data_dir=folder, superlink="h:1", insecure=True, name="d1")
    opts.validate()
    config = node_config(opts)
    assert f'data-dir="{folder.resolve()}"' in config and 'role="drone"' in config
    assert f"partition-id={node_number('d1')}" in config and 'node-name="d1"' in config
    with pytest.raises(ConfigError, match="--root-certificates"):
        AgentOptions(role="drone", data_dir=folder, superlink="h:1").validate()


def test_the_join_wait_is_the_agents_and_the_reconnect_limit_flowers(tmp_path: Path) -> None:
    """--max-wait-time bounds only the join (the agent's own deadline); Flower's --max-wait-time,
    which bounds every call and so every reconnection, comes only from --reconnect-timeout."""
    opts = AgentOptions(role="drone", data_dir=tmp_path, superlink="h:1", insecure=True)
    joined_only = supernode_command(replace(opts, max_wait_time=5.0))
    assert "--max-wait-time" not in joined_only and "--max-retries" not in joined_only
    cmd = supernode_command(replace(opts, max_wait_time=5.0, reconnect_timeout=600.0))
    assert cmd[cmd.index("--max-wait-time") + 1] == "600.0"
    argv = agent_argv(replace(opts, reconnect_timeout=600.0))
    assert argv[argv.index("--reconnect-timeout") + 1] == "600.0"
    with pytest.raises(ConfigError, match="--reconnect-timeout 0: must be > 0"):
        replace(opts, reconnect_timeout=0.0).validate()


def test_the_agent_says_once_per_outage_that_it_lost_and_reached_the_superlink(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    lines = [
        b"Connection attempt failed, retrying in 1.00 seconds\n",  # before joining: not an outage
        b"INFO :      SuperNode ID: 42\n",
        *[b"WARNING :   Connection attempt failed, retrying in 2.00 seconds\n"] * 3,
        b"INFO :      Connection successful after 9.10 seconds and 4 tries.\n",
        b"INFO :      Connection successful after 9.30 seconds and 2 tries.\n",  # heartbeat's
        b"WARNING :   Connection attempt failed, retrying in 0.50 seconds\n",  # a second outage
        b"INFO :      Start `flwr-clientapp` process\n",  # local: not an answer
        b"INFO :      Run ID 7 is not in `RUNNING` status. Ignoring reply message 9.\n",
    ]
    joined = threading.Event()
    with caplog.at_level(logging.INFO, logger="clients.agent_process"):
        _relay(io.BytesIO(b"".join(lines)), joined, "link:8000")
    assert joined.is_set()
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in said] == 2 * [
        "lost the SuperLink link",
        "reached the SuperLink link",
    ]
    assert said[1].startswith("reached the SuperLink link:8000 again after")
    assert capfd.readouterr().err.count("Connection attempt failed") == 5  # all relayed


def _run_agent(root: Path, opts: AgentOptions, timeout: float) -> tuple[int, str, float]:
    """The real agent CLI as a subprocess: (exit code, output, seconds it ran)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *agent_argv(opts)],
        capture_output=True,
        env=env,
        cwd=root,
        timeout=timeout,
        check=False,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    return done.returncode, output, time.monotonic() - start


def _seconds_since_logged(output: str, marker: str, end: float) -> float:
    """Wall seconds from the agent's first log line holding ``marker`` (its ``asctime``
    stamp) to ``end`` (``time.time()``): the agent's own timing, without Python's start-up."""
    line = next(line for line in output.splitlines() if marker in line)
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return end - stamp.timestamp()


def _processes_mentioning(*needles: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not is_alive(int(entry.name)):
            continue
        with suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if any(n in cmdline for n in needles):
                found.append(f"{entry.name}: {cmdline}")
    return found


def _lone_agent(root: Path, data: Path, **kw: object) -> AgentOptions:
    folder = root / "private"
    if not folder.is_dir():
        shutil.copytree(data / "eurosat-rgb" / "Forest", folder / "Forest")
    base: dict[str, object] = {
        "role": "drone",
        "data_dir": folder,
        "superlink": f"127.0.0.1:{free_port()}",  # nobody listens there
        "name": "lone-drone",
        "state_dir": root / "state",
        "runtime_port": free_port(),
    }
    base.update(kw)
    return AgentOptions(**base)  # type: ignore[arg-type]


@pytest.mark.integration
def test_agent_with_a_file_that_is_not_pem_fails_clearly_within_the_wait(
    fixture_data: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("this is not a certificate\n")
    opts = _lone_agent(tmp_path, fixture_data, root_certificates=bad, max_wait_time=20.0)
    code, output, seconds = _run_agent(tmp_path, opts, timeout=120)
    assert code == 2 and seconds < 20.0, (code, seconds, output)
    assert f"skydistill: error: --root-certificates {bad}: holds no PEM certificate" in output
    assert "Traceback" not in output and "Starting Flower SuperNode" not in output


@pytest.mark.parametrize("superlink", ["refused", "silent"])
@pytest.mark.integration
def test_agent_stops_a_supernode_that_does_not_join_within_the_wait(
    fixture_data: Path, tmp_path: Path, superlink: str
) -> None:
    """Nobody listens on the port (refused), or a socket accepts and never answers (silent:
    only the agent's own deadline ends the wait); both within the wait plus start-up."""
    certs = make_certs(tmp_path / "certs").folder
    wait = 5.0
    opts = _lone_agent(
        tmp_path, fixture_data, root_certificates=certs / "ca.crt", max_wait_time=wait
    )
    with socket.socket() as hole:  # listens, never accepts: connections hang in the backlog
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        if superlink == "silent":
            opts = replace(opts, superlink=f"127.0.0.1:{hole.getsockname()[1]}")
        code, output, _ = _run_agent(tmp_path, opts, timeout=120)
        ended = time.time()
    assert code == 2, output
    # From the SuperNode's start (what --max-wait-time bounds) to the agent's exit: the wait,
    # then stopping the SuperNode; not the agent's start-up (imports, the data check), which a
    # loaded machine stretches well beyond the wait.
    seconds = _seconds_since_logged(output, "SuperNode started (PID", ended)
    assert seconds < wait + 10.0, f"agent ran {seconds:.1f} s for --max-wait-time {wait}"
    assert f"before joining {opts.superlink}" in output or (
        f"did not join {opts.superlink} within --max-wait-time 5 s" in output
    ), output
    if superlink == "silent":
        assert "so it was stopped" in output
    assert "Starting Flower SuperNode" in output and "Traceback" not in output
    leftover = _processes_mentioning(str(opts.state), f"127.0.0.1:{opts.runtime_port}")
    assert not leftover, leftover


@pytest.mark.integration
def test_agent_refuses_to_start_without_tls_or_insecure(fleet: Fleet) -> None:
    opts = fleet.options("drone", root_certificates=None, auth_key=None)
    proc = fleet.start("no-tls", opts)
    assert proc.wait(timeout=120) == 2
    assert "pass --root-certificates" in fleet.log("no-tls")


@pytest.mark.integration
def test_three_roles_tls_auth_kill_and_rejoin(fleet: Fleet) -> None:
    # Intruders: an unregistered key is refused; a plain-HTTP agent never joins.
    rogue = fleet.start("rogue", fleet.options("drone", auth_key=fleet.certs / "agents/rogue"))
    plain = fleet.start(
        "plain", fleet.options("drone", root_certificates=None, auth_key=None, insecure=True)
    )
    agents = {role: fleet.options(role) for role in CLASSES}
    for role, opts in agents.items():
        fleet.start(role, opts)
    assert rogue.wait(timeout=180) != 0
    assert "Failed to activate SuperNode" in fleet.log("rogue")
    for role in CLASSES:
        wait_for(partial(fleet.joined, role), 180, f"{role} to join")
        assert "usable rgb tiles in" in fleet.log(role)
        assert health(str(agents[role].health_address)) == health_pb2.HealthCheckResponse.SERVING
    assert plain.poll() is None and not fleet.joined("plain")
    stop_tree(plain)

    out = fleet.root / "out"
    cfg = RunConfig(
        data_dir=str(fleet.data),
        out_dir=str(out),
        num_clients=3,
        num_rounds=2,
        fraction_train=1.0,
        min_train_clients=3,
        reference_per_round=8,
        teacher_epochs=1,
        global_pretrain_epochs=1,
        preinstall_epochs=1,
        metrics_linger=0.0,
        metrics_address=f"127.0.0.1:{free_port()}",
        round_timeout=ROUND_TIMEOUT,
    )
    out.mkdir()
    run_id = submit_run(fleet.link.home, PROJECT_ROOT, write_run_config(cfg, out / "rc.toml"), {})

    # Crash the drone agent while it trains in round 1 (its ClientApp process is running).
    drone = fleet.procs["drone"]

    def drone_training() -> bool:
        return any(
            "clientapp" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
            for pid in descendants(drone.pid)
            if Path(f"/proc/{pid}/cmdline").exists()
        )

    wait_for(drone_training, 300, "the drone's ClientApp to start in round 1")
    tree = [drone.pid, *descendants(drone.pid)]
    for pid in tree:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    drone.wait(timeout=30)

    # Restart it once round 1 is over; round 2 waits for three nodes.
    wait_for(lambda: (out / REPORT_FILE).is_file(), ROUND_TIMEOUT + 300, "round 1 to end")
    fleet.start("drone-again", agents["drone"])
    # Flower's status costs a `flwr` process (about a CPU-second): asked once round 2 is in.
    wait_for(lambda: len(report_rounds(out)) == 2, 400, "round 2 to end")
    wait_for(lambda: run_status(fleet.link.home, run_id).startswith("finished"), 120, "the run", 2)
    assert run_status(fleet.link.home, run_id) == COMPLETED

    report = json.loads((out / REPORT_FILE).read_text())
    first, second = report["rounds"]
    assert first["clients_ok"] == 2 and first["clients_failed"] == 1
    assert {r["role"] for r in first["replies"] if "role" in r} == {"satellite", "ground-station"}
    assert [r for r in first["replies"] if "Node Unavailable" in r.get("error", "")]
    assert second["clients_ok"] == 3 and second["clients_failed"] == 0
    assert {r["role"] for r in second["replies"]} == set(CLASSES)
    assert fleet.joined("drone-again")
