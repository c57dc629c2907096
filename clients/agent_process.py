"""The SuperNode of an edge agent, as a child process the agent watches.

The agent relays the SuperNode's output line by line and recognises the line Flower logs when
the node has joined (``SuperNode ID: N``). With a wait time, a SuperNode that has not joined
within it is stopped by PID (with its own children) and the agent fails with a message; so does
one that exits before joining. Once joined, it also recognises Flower's retry lines and says,
once per outage, that the SuperLink was lost and when the SuperNode reached it again (the
SuperNode itself retries; the agent only reports). Stopping the agent (SIGTERM, Ctrl-C) stops
the SuperNode too, and on Linux the SuperNode gets SIGTERM if the agent dies without cleaning up.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO

from common.processes import FlowerError, stop_tree

log = logging.getLogger(__name__)

JOINED = b"SuperNode ID:"  # Flower logs it once the SuperLink has accepted the node
RETRYING = b"Connection attempt failed"  # Flower's back-off after a failed call
# Lines the SuperNode logs only after an answer of the SuperLink: the retried call succeeded,
# a message came or went, or the SuperLink refused a reply for a run that is over (a retried
# call that ends so logs no success line).
ANSWERED = (
    b"Connection successful after",
    b"Receiving: ",
    b"Received successfully",
    b"Sent successfully",
    b"is not in `RUNNING` status",
)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover (runs in the child before exec)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _relay(stream: IO[bytes], joined: threading.Event, superlink: str) -> None:
    out = sys.stderr.buffer
    lost_at: float | None = None
    for line in iter(stream.readline, b""):
        out.write(line)
        out.flush()
        if JOINED in line:
            joined.set()
        elif RETRYING in line and joined.is_set() and lost_at is None:
            lost_at = time.monotonic()
            log.warning(
                "lost the SuperLink %s: the SuperNode keeps retrying (at most 20 s apart) and "
                "carries on when it is back",
                superlink,
            )
        elif lost_at is not None and any(answer in line for answer in ANSWERED):
            log.info(
                "reached the SuperLink %s again after %.0f s", superlink, time.monotonic() - lost_at
            )
            lost_at = None


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


def run_supernode(
    cmd: Sequence[str], env: Mapping[str, str], superlink: str, max_wait: float | None
) -> int:
    """Run the SuperNode until it exits; fail if it does not join within ``max_wait`` s."""
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdout is not None  # PIPE was asked for
    joined = threading.Event()
    relay = threading.Thread(target=_relay, args=(proc.stdout, joined, superlink), daemon=True)
    relay.start()
    log.info("SuperNode started (PID %d)", proc.pid)
    try:
        if max_wait is not None:
            _wait_for_join(proc, joined, superlink, max_wait)
        code = proc.wait()
    finally:
        stop_tree(proc)  # a no-op once it has exited
    relay.join(timeout=5)
    if not joined.is_set():
        raise FlowerError(
            f"the SuperNode exited with code {_exit_code(code)} before joining {superlink} "
            "(its log is above)"
        )
    log.info("SuperNode %d exited with code %d", proc.pid, _exit_code(code))
    return _exit_code(code)


def _wait_for_join(
    proc: subprocess.Popen[bytes], joined: threading.Event, superlink: str, max_wait: float
) -> None:
    deadline = time.monotonic() + max_wait
    while not joined.wait(0.2):
        if proc.poll() is not None:
            return
        if time.monotonic() >= deadline:
            stop_tree(proc)
            raise FlowerError(
                f"the SuperNode (PID {proc.pid}) did not join {superlink} within "
                f"--max-wait-time {max_wait:g} s, so it was stopped: check that the SuperLink "
                "runs and is reachable from this node, that --root-certificates is the CA that "
                "signed its certificate, and (with node authentication) that this node's key "
                "is registered (`skydistill register`)"
            )
