"""A process tree watched from a background thread: what bench scale's memory sampler
(``memory.TreeMemory``) and its priority keeper (``priority.FlowerBelowClients``) share."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

import psutil

FLOWER = ("flower-", "flwr-")  # command names of Flower's processes
RAYLET = "raylet"


def process_tree(root_pid: int) -> list[psutil.Process]:
    """``root_pid`` and its live descendants; empty once the root is gone."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def command_base(proc: psutil.Process, prefixes: tuple[str, ...]) -> str | None:
    """The first word of ``proc``'s command line whose base name starts with one of
    ``prefixes`` (``flwr-simulation``, ``raylet``, ...); "" if none, None if unreadable."""
    try:
        parts = proc.cmdline()
    except (psutil.Error, OSError):
        return None
    for part in parts:
        base = str(part).rsplit("/", 1)[-1]
        if base.startswith(prefixes):
            return base
    return ""


class TreeWatcher:
    """Context manager: while open, call :meth:`tick` every ``interval`` seconds from a
    daemon thread (not started when ``active`` is false)."""

    def __init__(self, root_pid: int, interval: float, name: str, *, active: bool = True) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self._active = active
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        if self._active:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
