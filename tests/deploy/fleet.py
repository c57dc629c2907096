"""Helpers of the deployment integration tests: agents' data folders, ports, waiting, and the
``skydistill`` command line as a subprocess (real processes on 127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from common.processes import descendants, free_port, is_alive
from common.settings import PROJECT_ROOT
from server.history import REPORT_FILE

# Each role's own imagery: a few classes of the fixture archive.
CLASSES = {
    "satellite": ("AnnualCrop", "Forest", "HerbaceousVegetation"),
    "drone": ("Highway", "Industrial", "Pasture"),
    "ground-station": ("PermanentCrop", "Residential", "River", "SeaLake"),
}


def report_rounds(out: Path) -> list[dict[str, Any]]:
    """The rounds a run's ``report.json`` in ``out`` holds so far ([] before the first)."""
    try:
        return list(json.loads((out / REPORT_FILE).read_text())["rounds"])
    except (OSError, ValueError, KeyError):
        return []


def wait_for(cond: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def private_folder(data: Path, folder: Path, classes: tuple[str, ...]) -> Path:
    """``folder`` holding ``classes`` of the fixture archive (made once)."""
    if not folder.is_dir():
        for cls in classes:
            shutil.copytree(data / "eurosat-rgb" / cls, folder / cls)
    return folder


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection is given
    it meanwhile: for a SuperLink that must come back on the same port after a crash, and an
    exporter that binds only once the ground models are ready (meanwhile any outgoing
    connection, Ray's or gRPC's, may be given a port of :func:`free_port`'s range: seen as
    'Address already in use'). Falls back to :func:`free_port` if none is free there."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(20_000, max(20_001, min(low, 32_768))), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``skydistill`` subprocess: this checkout importable, unbuffered
    output (its log files are read while it runs)."""
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1", **(extra or {})}


def start_cli(args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """``skydistill ARGS`` in the background, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(),
            cwd=cwd,
        )


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> str:
    """``skydistill ARGS`` to the end: its output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        env=cli_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, output
    return output


def cmdline(pid: int) -> str:
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def running(parent: int, needle: str) -> list[int]:
    """Live descendants of ``parent`` whose command line holds ``needle``."""
    return [pid for pid in descendants(parent) if is_alive(pid) and needle in cmdline(pid)]
