"""Drive real Flower processes on this machine: a SuperLink, ``flwr run`` and run status.

Every process gets the environment DESIGN.md asks for (``FLWR_HOME`` inside the run folder,
update checks, telemetry and runtime dependency installation off). Processes are stopped by
PID, with their whole process tree: a SuperLink detaches its SuperExec into another session.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pathspec

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
        """Start the SuperLink and wait until it answers."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the SuperLink's process without waiting for it (about 3 s of imports before
        it answers): do other work, then :meth:`wait_ready`. :meth:`stop` it either way."""
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

    def wait_ready(self) -> SuperLink:
        """Block until the launched SuperLink answers; stop it and raise if it exits or does
        not answer within ``startup_timeout`` seconds."""
        if self.proc is None:
            raise FlowerError("the SuperLink was not launched: call launch() or start() first")
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


def _ignored(app_dir: Path) -> pathspec.GitIgnoreSpec:
    gitignore = app_dir / ".gitignore"
    lines = gitignore.read_text(errors="replace").splitlines() if gitignore.is_file() else []
    return pathspec.GitIgnoreSpec.from_lines(["/.git/", *lines])


def stage_app(app_dir: Path, into: Path) -> Path:
    """Copy the Flower App in ``app_dir`` to ``into`` without the folders its ``.gitignore``
    ignores and without ``.git``; return ``into``.

    ``flwr run DIR`` (Flower 1.42, ``collect_files``) resolves every file under DIR before it
    filters them by the app's ``.gitignore``: with the project's ``.venv`` (60,000 files) and a
    benchmark's run folders under it, that was 10-20 s of every run's start on this machine
    (2.6 s from the copy). Flower filters the copy by the same rules, so it builds the same FAB
    byte for byte (``.git`` holds no file Flower packs: no ``.py``, ``.toml``, ``.md``...).
    Symlinks are left out, as Flower leaves them out."""
    spec = _ignored(app_dir)
    target = into.resolve()
    for folder, dirs, files in os.walk(app_dir, followlinks=False):
        here = Path(folder)
        rel = here.relative_to(app_dir)
        dirs[:] = [
            d
            for d in dirs
            if not (here / d).is_symlink()
            and (here / d).resolve() != target  # a staging folder inside the app itself
            and not spec.match_file(f"{(rel / d).as_posix()}/")
        ]
        for name in files:
            source = here / name
            if source.is_symlink() or spec.match_file((rel / name).as_posix()):
                continue
            (into / rel).mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / rel / name)
    return into


def submit_run(
    home: Path, app_dir: Path, run_config: Path, federation_config: Mapping[str, Any]
) -> int:
    """Submit the app in ``app_dir`` (staged by :func:`stage_app`) to the connection in
    ``home``; return the run id."""
    fed = " ".join(f"{k}={json.dumps(v)}" for k, v in federation_config.items())
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="app-", dir=home) as staging:
        staged = stage_app(app_dir, Path(staging) / app_dir.resolve().name)
        args = ["run", str(staged), CONNECTION, "--run-config", str(run_config)]
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
    every ``status_every`` seconds, the first time ``status_every`` seconds after the call
    (a run just submitted is not over yet), or every poll once ``done()`` says the work is
    over.
    """
    deadline = time.monotonic() + timeout
    next_status = time.monotonic() + status_every
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
