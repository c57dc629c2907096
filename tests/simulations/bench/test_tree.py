"""The process-tree watchers of bench scale: a real child process, sampled and reniced."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from simulations.bench.memory import TreeMemory
from simulations.bench.priority import FlowerBelowClients
from simulations.bench.tree import command_base, process_tree


def test_the_tree_holds_the_root_and_its_children_and_is_empty_once_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pids = {p.pid for p in process_tree(os.getpid())}
        assert {os.getpid(), child.pid} <= pids
        assert command_base(process_tree(child.pid)[0], ("python",)) is not None
    finally:
        child.kill()
        child.wait()
    assert process_tree(child.pid) == []


def test_memory_is_sampled_until_exit_and_priority_waits_for_a_raylet() -> None:
    with TreeMemory(os.getpid(), interval=0.05) as memory:
        time.sleep(0.3)
    samples = memory.peak.samples
    assert samples >= 2 and memory.peak.rss_bytes > 0
    time.sleep(0.15)
    assert memory.peak.samples == samples  # the thread stopped with the context
    before = os.getpriority(os.PRIO_PROCESS, 0)
    with FlowerBelowClients(os.getpid(), 19, interval=0.05) as below:
        time.sleep(0.2)
    assert below.reniced == set()  # no raylet in this tree: nothing is reniced
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
    with FlowerBelowClients(os.getpid(), 0) as idle:
        assert not idle._thread.is_alive()  # niceness 0: no thread at all
