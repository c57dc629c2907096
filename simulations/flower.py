"""Drive real Flower processes on this machine: a SuperLink, ``flwr run`` and run status.

Every process gets the environment DESIGN.md asks for (``FLWR_HOME`` inside the run folder,
update checks, telemetry and runtime dependency installation off). Processes are stopped by
PID, with their whole process tree: a SuperLink detaches its SuperExec into another session.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from common.processes import (
    BIN,
    FlowerError,
    flower_env,
    free_port,
    stop_tree,
)
from simulations.logstream import LogStream

log = logging.getLogger(__name__)

CONNECTION = "skydistill"
FINISHED = "finished"


def write_connection(
    home: Path, address: str, *, root_certificates: Path | None = None, name: str = CONNECTION
) -> None:
    """Write ``$FLWR_HOME/config.toml`` with one SuperLink connection (flwr 1.42 layout)."""
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        "[superlink]",
        f'default = "{name}"',
        "",
        f"[superlink.{name}]",
        f'address = "{address}"',
    ]
    if root_certificates is None:
        lines.append("insecure = true")
    else:
        lines.append(f'root-certificates = "{root_certificates}"')
    (home / "config.toml").write_text("\n".join(lines) + "\n")


class SuperLink:
    """A ``flower-superlink`` on 127.0.0.1, started and stopped by this object."""

    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        simulation: bool = True,
        extra_args: tuple[str, ...] = (),
        insecure: bool = True,
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.env = dict(env or {})  # extra environment (e.g. RAY_ADDRESS), inherited by the
        # SuperExec and the simulation process it starts
        self.port = port or free_port()
        self.host = host
        self.simulation = simulation
        self.extra_args = extra_args
        self.insecure = insecure
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "superlink.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> SuperLink:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(BIN / "flower-superlink"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--disable-runtime-dependency-installation",
            *self.extra_args,
        ]
        if self.insecure:
            cmd.append("--insecure")
        if self.simulation:
            cmd.append("--simulation")
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=flower_env(self.home, self.env)
            )
        try:
            return self._wait_ready(self.proc)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> SuperLink:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FlowerError(
                    f"flower-superlink exited with code {proc.returncode}: see {self.log_path}"
                )
            if self._healthy():
                log.info("SuperLink %d listening on %s", proc.pid, self.address)
                return self
            time.sleep(0.2)
        raise FlowerError(
            f"SuperLink not ready after {self.startup_timeout:.0f} s: see {self.log_path}"
        )

    def _healthy(self) -> bool:
        if not self.insecure:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            with urllib.request.urlopen(f"http://{self.address}/health", timeout=0.5) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_tree(self.proc)
            log.info("SuperLink %d stopped", self.proc.pid)

    def __enter__(self) -> SuperLink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def flwr(home: Path, *args: str, timeout: float = 300.0) -> dict[str, Any]:
    """Run a ``flwr`` CLI command with ``--format json`` and return its parsed answer."""
    cmd = [str(BIN / "flwr"), *args, "--format", "json"]
    done = subprocess.run(
        cmd, env=flower_env(home), capture_output=True, text=True, timeout=timeout, check=False
    )
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise FlowerError(
            f"`{' '.join(cmd[1:])}` gave no JSON answer (exit {done.returncode}): "
            f"{done.stdout[-500:]} {done.stderr[-2000:]}"
        ) from None
    if not answer.get("success", False):
        raise FlowerError(f"`{' '.join(cmd[1:3])}` failed: {answer.get('error-message', answer)}")
    return answer


def submit_run(
    home: Path, app_dir: Path, run_config: Path, federation_config: Mapping[str, Any]
) -> int:
    fed = " ".join(f"{k}={json.dumps(v)}" for k, v in federation_config.items())
    args = ["run", str(app_dir), CONNECTION, "--run-config", str(run_config)]
    if fed:
        args += ["--federation-config", fed]
    return int(flwr(home, *args)["run-id"])


def run_status(home: Path, run_id: int) -> str:
    runs = flwr(home, "ls", CONNECTION, "--run-id", str(run_id))["runs"]
    return str(runs[0]["status"]) if runs else "unknown"


def wait_for_run(
    home: Path,
    run_id: int,
    *,
    poll: float = 1.0,
    status_every: float = 20.0,
    timeout: float = 24 * 3600.0,
    on_poll: Callable[[], None] | None = None,
    done: Callable[[], bool] | None = None,
) -> str:
    """Block until the run is finished; return Flower's final status (e.g. finished:completed).

    Asking the SuperLink costs a ``flwr`` process (about a CPU-second), so the status is asked
    every ``status_every`` seconds, or every poll once ``done()`` says the work is over.
    """
    deadline = time.monotonic() + timeout
    next_status = 0.0
    while time.monotonic() < deadline:
        if on_poll is not None:
            on_poll()
        now = time.monotonic()
        if now >= next_status or (done is not None and done()):
            status = run_status(home, run_id)
            if status.startswith(FINISHED):
                return status
            next_status = now + status_every
        time.sleep(poll)
    raise FlowerError(f"run {run_id} did not finish within {timeout:.0f} s")


def stream_logs(home: Path, run_id: int, path: Path) -> LogStream:
    """Follow a run's logs (ServerApp, Flower's simulation engine and the warnings of
    simulated clients) into ``path``: plain text, one line per event, Flower's advice that
    does not apply to skydistill left out."""
    cmd = [str(BIN / "flwr"), "log", str(run_id), CONNECTION, "--stream"]
    return LogStream(cmd, flower_env(home), path)
