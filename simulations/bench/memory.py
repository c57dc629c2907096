"""Peak memory and CPU of a process tree (a SuperLink and everything it starts), with psutil.

A background thread sums the resident set size (RSS) of a root process and all its live
descendants every ``interval`` seconds and keeps the peak, with which processes made it up.
It also keeps each process's CPU seconds (user + system, as last seen), summed by process
name, and the busiest thread of each process: where the time of a simulation goes.
Summed RSS counts pages shared between processes (the Python runtime, torch, memory-mapped
tiles) once per process, so it overstates the real footprint; the proportional set size
(PSS, shared pages split among their users) is sampled too where the kernel provides it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import psutil

from simulations.bench.tree import FLOWER, RAYLET, TreeWatcher, process_tree

log = logging.getLogger(__name__)


@dataclass
class TreePeak:
    rss_bytes: int = 0
    pss_bytes: int = 0
    processes: int = 0
    samples: int = 0
    by_name: dict[str, int] = field(default_factory=dict)  # RSS per process name at the peak
    # CPU seconds per process name (summed over processes of that name, as last seen alive)
    cpu_by_name: dict[str, float] = field(default_factory=dict)
    # CPU seconds of the busiest thread of each process name (the largest, as last seen)
    busiest_thread_by_name: dict[str, float] = field(default_factory=dict)


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
        if base.startswith((*FLOWER, RAYLET, "gcs_server")):
            return base
        if base.endswith(".py") and "ray" in part:
            return base
    return name


class TreeMemory(TreeWatcher):
    """Context manager: sample the tree under ``root_pid`` until exit; ``peak`` holds the max."""

    def __init__(self, root_pid: int, interval: float = 0.5, pss_every: int = 10) -> None:
        super().__init__(root_pid, interval, "tree-memory")
        self.pss_every = pss_every  # PSS reads every mapping (smaps): costly, so only every Nth
        self.peak = TreePeak()
        self._cpu: dict[int, tuple[str, float, float]] = {}  # pid -> name, CPU s, busiest thread

    def tick(self) -> None:
        self.sample()

    def sample(self) -> None:
        procs = process_tree(self.root_pid)
        if not procs:
            return
        rss = pss = 0
        names: Counter[str] = Counter()
        full = self.pss_every > 0 and self.peak.samples % self.pss_every == 0
        for proc in procs:
            with contextlib.suppress(psutil.Error, OSError):
                mem = proc.memory_full_info() if full else proc.memory_info()
                name = _name(proc)
                rss += mem.rss
                pss += getattr(mem, "pss", 0)
                names[name] += mem.rss
                times = proc.cpu_times()
                threads = proc.threads()
                busiest = max((t.user_time + t.system_time for t in threads), default=0.0)
                # a thread's time is gone with the thread: keep the largest seen
                busiest = max(busiest, self._cpu.get(proc.pid, ("", 0.0, 0.0))[2])
                self._cpu[proc.pid] = (name, times.user + times.system, busiest)
        self._tally_cpu()
        self.peak.samples += 1
        self.peak.pss_bytes = max(self.peak.pss_bytes, pss)
        if rss > self.peak.rss_bytes:
            self.peak.rss_bytes = rss
            self.peak.processes = len(procs)
            self.peak.by_name = dict(names.most_common())

    def _tally_cpu(self) -> None:
        cpu: dict[str, float] = {}
        busiest: dict[str, float] = {}
        for name, seconds, thread in self._cpu.values():
            cpu[name] = cpu.get(name, 0.0) + seconds
            busiest[name] = max(busiest.get(name, 0.0), thread)
        order = sorted(cpu, key=lambda k: -cpu[k])
        self.peak.cpu_by_name = {k: round(cpu[k], 2) for k in order}
        self.peak.busiest_thread_by_name = {k: round(busiest[k], 2) for k in cpu}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        log.info(
            "peak RSS of the tree under %d: %.2f GiB over %d processes (%d samples)",
            self.root_pid,
            self.peak.rss_bytes / 2**30,
            self.peak.processes,
            self.peak.samples,
        )
