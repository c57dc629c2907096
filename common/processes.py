"""Processes of Flower's binaries on this machine: their environment, and stopping a tree by PID.

Framework-free (nothing here imports Flower): the edge agent (``clients``) and the SuperLink
driver (``simulations``) both start Flower's executables, and a SuperLink detaches its SuperExec
into another session, so a process is stopped with its whole tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from common.errors import SkydistillError

BIN = Path(sys.executable).parent


class FlowerError(SkydistillError):
    """A Flower process failed to start, or a run did not complete."""


def flower_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a Flower process (and the Ray workers and apps it starts)."""
    env = dict(os.environ)
    # Idle OpenMP threads sleep instead of spinning: a federation's processes (ServerApp,
    # Ray actors, the driver) share the cores, and a spinning pool steals them from the
    # process with work. A setting of the caller's own wins; results do not depend on it.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(
        {
            "FLWR_HOME": str(home),
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (read from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def stop_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM a process and its descendants, then SIGKILL whatever is left."""
    if proc.poll() is not None:
        return
    tree = [proc.pid, *descendants(proc.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(is_alive(p) for p in tree):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        if not any(is_alive(p) for p in tree):
            return


def is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
