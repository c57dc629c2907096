"""Wall seconds of a client round's parts, summed per process.

The ClientApp wraps each part of a round (decode the message, get the data tensors, get the
student, train, predict, keep the student, encode the reply) in :func:`part`. The sums live
in this process only and cost two clock reads per part; ``skydistill bench scale`` reads them
around its plain loop (``client_round_parts``, ``client_compute_ratio``), nothing else does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

DECODE = "decode"  # node and run config, the train message
DATA = "data"  # shard and reference tensors
MODEL = "model"  # the student: from memory, the state, a file or the pre-installed one
TRAIN = "train"  # training steps (local round and digest)
PREDICT = "predict"  # predictions on the reference tiles and the held-out split
KEEP = "keep"  # the student into the node's state, and its student file
ENCODE = "encode"  # DP noise or attack, the reply's records
PARTS = (DECODE, DATA, MODEL, TRAIN, PREDICT, KEEP, ENCODE)
COMPUTE = (TRAIN, PREDICT)  # what a round is for; the rest is what it costs besides

_seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)


@contextmanager
def part(name: str) -> Iterator[None]:
    """Add the wall seconds of the ``with`` block to part ``name``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _seconds[name] = _seconds.get(name, 0.0) + time.perf_counter() - start


def totals() -> dict[str, float]:
    """Seconds per part since the last :func:`reset` (or the start of the process)."""
    return dict(_seconds)


def reset() -> None:
    for name in list(_seconds):
        _seconds[name] = 0.0
