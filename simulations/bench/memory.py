"""Peak memory of a process tree (a SuperLink and everything it starts), sampled with psutil.

A background thread sums the resident set size (RSS) of a root process and all its live
descendants every ``interval`` seconds and keeps the peak, with which processes made it up.
Summed RSS counts pages shared between processes (the Python runtime, torch, memory-mapped
tiles) once per process, so it overstates the real footprint; the proportional set size
(PSS, shared pages split among their users) is sampled too where the kernel provides it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import psutil

log = logging.getLogger(__name__)


@dataclass
class TreePeak:
    rss_bytes: int = 0
    pss_bytes: int = 0
    processes: int = 0
    samples: int = 0
    by_name: dict[str, int] = field(default_factory=dict)  # RSS per process name at the peak


def _name(proc: psutil.Process) -> str:
    """A short, stable label: Ray workers show as ``ray::<actor>``, Flower by its command."""
    try:
        cmdline: list[str] = [str(part) for part in proc.cmdline()]
        name = str(proc.name())
    except (psutil.Error, OSError):
        return "?"
    if cmdline and cmdline[0].startswith("ray::"):
        return cmdline[0].split()[0]
    for part in cmdline:
        base = part.rsplit("/", 1)[-1]
        if base.startswith(("flower-", "flwr-", "raylet", "gcs_server")):
            return base
        if base.endswith(".py") and "ray" in part:
            return base
    return name


class TreeMemory:
    """Context manager: sample the tree under ``root_pid`` until exit; ``peak`` holds the max."""

    def __init__(self, root_pid: int, interval: float = 0.5, pss_every: int = 10) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.pss_every = pss_every  # PSS reads every mapping (smaps): costly, so only every Nth
        self.peak = TreePeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = pss = 0
        names: Counter[str] = Counter()
        full = self.pss_every > 0 and self.peak.samples % self.pss_every == 0
        for proc in procs:
            with contextlib.suppress(psutil.Error, OSError):
                mem = proc.memory_full_info() if full else proc.memory_info()
                rss += mem.rss
                pss += getattr(mem, "pss", 0)
                names[_name(proc)] += mem.rss
        self.peak.samples += 1
        self.peak.pss_bytes = max(self.peak.pss_bytes, pss)
        if rss > self.peak.rss_bytes:
            self.peak.rss_bytes = rss
            self.peak.processes = len(procs)
            self.peak.by_name = dict(names.most_common())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        log.info(
            "peak RSS of the tree under %d: %.2f GiB over %d processes (%d samples)",
            self.root_pid,
            self.peak.rss_bytes / 2**30,
            self.peak.processes,
            self.peak.samples,
        )
