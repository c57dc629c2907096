"""What every run-config value must be: ranges as data, and the error that names them all.

``RunConfig`` checks every numeric key against ``RANGES`` once, in ``__post_init__``, and
raises one ``InvalidSettings`` listing each bad value (key, value, allowed range). A command
line knows which flag or ``--set`` item gave a key and re-raises with ``with_sources``, so
that the message reads ``--clients 0: num-clients must be at least 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """A closed or open interval; ``None`` is unbounded. ``note`` explains a special value."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def rule(self, integer: bool) -> str:
        """``must be at least 1``, ``must be >= 0``, ``must be in (0, 1]``, ..."""
        low, high = self.low, self.high
        if low is not None and high is None:
            if integer and not self.low_open:
                text = f"must be at least {low:g}"
            else:
                text = f"must be {'>' if self.low_open else '>='} {low:g}"
        elif low is not None and high is not None:
            if integer and not (self.low_open or self.high_open):
                text = f"must be between {low:g} and {high:g}"
            else:
                text = (
                    f"must be in {'(' if self.low_open else '['}{low:g}, "
                    f"{high:g}{')' if self.high_open else ']'}"
                )
        elif high is not None:
            text = f"must be {'<' if self.high_open else '<='} {high:g}"
        else:
            text = "must be a finite number"
        return f"{text} ({self.note})" if self.note else text


AT_LEAST_ONE = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
UNIT = Range(0, 1)  # [0, 1]
SPLIT_SHARE = Range(0, 1, low_open=True, high_open=True)  # (0, 1)

# Every int and float field of RunConfig, by its kebab-case key (a test checks that none is
# missing). Cross-field rules (the split shares' sum) live in RunConfig itself.
RANGES: dict[str, Range] = {
    "num-rounds": AT_LEAST_ONE,
    "num-clients": AT_LEAST_ONE,
    "alpha": Range(0, note="0 = IID"),
    "seed": NON_NEGATIVE,
    "fraction-train": Range(0, 1, low_open=True),
    "min-train-clients": AT_LEAST_ONE,
    "reference-per-round": AT_LEAST_ONE,
    "temperature": POSITIVE,
    "kd-weight": UNIT,
    "teacher-mix": UNIT,
    "teacher-mix-start": UNIT,
    "teacher-refine-epochs": Range(0, note="0 = the teacher stays fixed"),
    "teacher-refine-lr": POSITIVE,
    "topk": AT_LEAST_ONE,
    "trim": Range(0, 0.5, low_open=True, high_open=True),
    "server-epochs": AT_LEAST_ONE,
    "global-pretrain-epochs": Range(0, note="0 = no pre-training"),
    "teacher-epochs": AT_LEAST_ONE,
    "batch-size": AT_LEAST_ONE,
    "learning-rate": POSITIVE,
    "reference-fraction": SPLIT_SHARE,
    "test-fraction": SPLIT_SHARE,
    "archive-fraction": SPLIT_SHARE,
    "holdout-fraction": Range(0, 1, high_open=True),
    "round-timeout": POSITIVE,
    "evaluate-every": Range(0, note="0 = off"),
    "metrics-linger": NON_NEGATIVE,
    "preinstall-epochs": AT_LEAST_ONE,
    "client-lr": POSITIVE,
    "client-epochs": AT_LEAST_ONE,
    "client-digest-epochs": Range(0, note="0 = off"),
    "fedavg-lr": POSITIVE,
    "fedavg-epochs": AT_LEAST_ONE,
    "fedprox-mu": Range(0, note="0 = plain FedAvg on the clients"),
    "fedadam-eta": POSITIVE,
    "dp-noise": Range(0, note="0 = no noise"),
    "dp-clip": POSITIVE,
    "attackers": Range(0, 1, high_open=True, note="a fraction of the clients"),
    "resume": Range(0, 1, note="1 = continue from the checkpoint"),
    "round-window-minutes": POSITIVE,
    "max-staleness": Range(0, 100),
    "staleness-decay": Range(0, 1, low_open=True),
    "shard-size": Range(0, note="0 = disjoint shards"),
    "client-statistics": Range(0, 1, note="1 = clients send class statistics"),
    "statistics-discount": POSITIVE,
    "statistics-temperature": POSITIVE,
    "statistics-shrinkage": Range(0, 1, high_open=False, low_open=True),
    "head-epochs": AT_LEAST_ONE,
    "head-lr": POSITIVE,
    "head-kd-weight": Range(0, note="0 = cross-entropy on the archive only"),
}


@dataclass(frozen=True)
class Invalid:
    """One bad setting: its run-config key, the value it was given and what it must be."""

    key: str
    value: Any
    rule: str  # e.g. "must be at least 1"

    def describe(self, source: str | None = None) -> str:
        """``num-clients must be at least 1, got 0``, or with the flag or ``--set`` item that
        gave the value: ``--clients 0: num-clients must be at least 1``."""
        if source:
            return f"{source}: {self.key} {self.rule}"
        return f"{self.key} {self.rule}, got {self.value!r}"


class InvalidSettings(ConfigError):
    """Run-config values of the wrong type or out of range: every one found, each named."""

    def __init__(self, problems: Sequence[Invalid], sources: Mapping[str, str] | None = None):
        self.problems = tuple(problems)
        # key -> what gave it on a command line ("--clients 0", "--set num-clients=0")
        self.sources = dict(sources or {})
        super().__init__("; ".join(p.describe(self.sources.get(p.key)) for p in self.problems))

    def with_sources(self, sources: Mapping[str, str]) -> InvalidSettings:
        """The same problems, each prefixed by the flag or ``--set`` item that gave it."""
        return InvalidSettings(self.problems, {**self.sources, **sources})

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (Ray) with its fields, not its text
        return (InvalidSettings, (self.problems, self.sources))
