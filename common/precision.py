"""The arithmetic of the training loops: bfloat16 autocast where the CPU computes it natively.

On a CPU with AVX-512 BF16 (or AMX) instructions, oneDNN's bfloat16 convolutions train the
zoo's models 1.5-2.0x faster than float32 (the ground's phases of a cold ``make run``: the
README's "Where the time goes"); without them it emulates bfloat16 and is slower. So
``precision = "auto"`` (the default) means bf16 where the CPU has the instructions and fp32
elsewhere; "bf16" and "fp32" force one. Training uses it (forward and loss under
``torch.autocast``; weights, optimiser state and gradients stay float32), and so do the
predictions made inside the rounds: a client's predictions on the reference tiles and on its
held-out split, and the global student's test accuracy after each round (the forward pass
under autocast, the softmax in float32; about 2x faster here). Not bit-equal to float32: on
2,040 test tiles the arg-max of freshly built students agreed on 99.95-100 %, and the global
student's start accuracy, a model taken mid-cycle at a high learning rate, read 0.7917 in bf16
against 0.7882 in float32; the control and the federation are scored the same way. The
teacher's soft labels, the cached models' scores and the benchmarks' scoring stay float32.

The resolved precision is part of every cached model's recipe: a model trained in bf16 is
not the one trained in fp32.
"""

from __future__ import annotations

import functools
from pathlib import Path

PRECISIONS = ("auto", "bf16", "fp32")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo names of native bf16
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux's /proc/cpuinfo flags; elsewhere,
    or unreadable: no)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(BF16_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def use_bf16(precision: str) -> bool:
    """Whether training loops of ``precision`` (one of PRECISIONS) run under bf16 autocast."""
    if precision == "auto":
        return native_bf16()
    return precision == "bf16"
