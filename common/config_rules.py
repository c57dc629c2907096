"""What every run-config value must be: ranges and choices as data, the rules between keys,
and the error that names every bad value.

``RunConfig`` checks a whole config once, in ``__post_init__``, with ``problems``: each
numeric key against ``RANGES``, each text key with a fixed set of values against
``CHOICES``, and the rules that tie keys together. It raises one ``InvalidSettings`` listing
each bad value (key, value, what it must be). A command line knows which flag or ``--set``
item gave a key and re-raises with ``with_sources``, so that the message reads
``--clients 0: num-clients must be at least 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.bands import DATASETS
from common.codec import Codec
from common.config_parse import ROLES, parse_archive_gap, role_cycle
from common.errors import ConfigError
from common.models import ZOO
from common.precision import PRECISIONS


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
    "teacher-coarse-fraction": Range(0, 1, high_open=True, note="0 = every epoch at full size"),
    "student-coarse-fraction": Range(0, 1, high_open=True, note="0 = every epoch at full size"),
    "batch-size": AT_LEAST_ONE,
    "learning-rate": POSITIVE,
    "reference-fraction": SPLIT_SHARE,
    "test-fraction": SPLIT_SHARE,
    "archive-fraction": SPLIT_SHARE,
    "holdout-fraction": Range(0, 1, high_open=True),
    "round-timeout": POSITIVE,
    "max-in-flight": Range(0, note="0 = all at once"),
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
    "attack-scale": Range(1, 1e4, note="1 = the evidence it holds"),
    "attack-after": NON_NEGATIVE,
    "attack-omniscient": Range(0, 1, note="1 = the attackers know the truth"),
    "trust-threshold": Range(0, 1, low_open=True, high_open=True),
    "trust-memory": Range(0, 1, high_open=True, note="0 = the last agreement only"),
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


AGGREGATIONS = ("mean", "class-weighted", "entropy-reduced", "trimmed-mean", "median", "history")
HISTORY_BASES = ("mean", "trimmed-mean", "median")
METHODS = ("fedkd", "fedavg")
CLIENT_INITS = ("pretrained", "scratch")
OPTIMIZERS = ("adam", "sgd")
FUSION_RULES = ("max", "ratio")  # statistics-fusion (server/evidence.py)
FEDAVG_STRATEGIES = ("FedAvg", "FedProx", "FedAdam")  # Flower's own strategies, by class name
BATCH_NORM = ("train", "frozen")
SCHEDULES = ("contact-aware", "synchronous")
SAMPLE_BY = ("node", "client")
ATTACKS = ("random", "inverted", "constant", "mixed", "lma", "cpa", "label-flip", "sleeper")

# Every text field of RunConfig with a fixed set of values, by its kebab-case key (a test
# checks each default is allowed). ``MAY_BE_EMPTY`` keys also take "" (their feature is off).
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": tuple(DATASETS),
    "codec": tuple(c.value for c in Codec),
    "aggregation": AGGREGATIONS,
    "history-base": HISTORY_BASES,
    "method": METHODS,
    "client-init": CLIENT_INITS,
    "fedavg-optimizer": OPTIMIZERS,
    "fedavg-bn": BATCH_NORM,
    "fedavg-strategy": FEDAVG_STRATEGIES,
    "client-bn": BATCH_NORM,
    "attack": ATTACKS,
    "precision": PRECISIONS,
    "schedule": SCHEDULES,
    "sample-by": SAMPLE_BY,
    "statistics-fusion": FUSION_RULES,
    "global-student": tuple(ZOO),
    "student": tuple(ZOO),
}
MAY_BE_EMPTY = frozenset({"student"})
SPLIT_SHARES = ("reference-fraction", "test-fraction", "archive-fraction")


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


def parse_class_pair(value: str, classes: Sequence[str]) -> tuple[int, int] | None:
    """``attack-flip``: ``"A:B"`` (class names or indices) -> (A, B); ``""`` -> None."""
    if not value:
        return None
    parts = [p.strip() for p in value.split(":")]
    if len(parts) != 2:
        raise ConfigError("must be SOURCE:TARGET, two class names or indices")
    pair = []
    for name in parts:
        if name.isdigit() and int(name) < len(classes):
            pair.append(int(name))
        elif name in classes:
            pair.append(list(classes).index(name))
        else:
            raise ConfigError(
                f"names {name!r}, neither a class index below {len(classes)} nor one of "
                f"{', '.join(classes)}"
            )
    if pair[0] == pair[1]:
        raise ConfigError("flips a class onto itself: name two different classes")
    return pair[0], pair[1]


def problems(values: Mapping[str, Any]) -> list[Invalid]:
    """Every bad value of a whole run config (kebab-case keys, values of the field types):
    choices first, then the roles, the ranges in field order and the rules between keys."""
    found: list[Invalid] = []
    for key, allowed in CHOICES.items():
        value = values[key]
        if value not in allowed and not (key in MAY_BE_EMPTY and value == ""):
            rule = f"must be one of {', '.join(allowed)}"
            found.append(Invalid(key, value, rule + " or empty" * (key in MAY_BE_EMPTY)))
    cycle = role_cycle(values["roles"])
    unknown = [r for r in cycle if r not in ROLES]
    if unknown or not cycle:
        rule = f"must be a comma-separated list of {', '.join(ROLES)}"
        found.append(
            Invalid(
                "roles",
                values["roles"],
                rule + (f" (unknown role {unknown[0]!r})" if unknown else ""),
            )
        )
    for key, value in values.items():
        bounds = RANGES.get(key)
        if bounds is not None and not bounds.holds(value):
            found.append(Invalid(key, value, bounds.rule(isinstance(value, int))))
    try:
        parse_archive_gap(values["archive-gap"])
    except ConfigError as exc:
        found.append(Invalid("archive-gap", values["archive-gap"], str(exc)))
    if values["dataset"] in DATASETS:
        try:
            parse_class_pair(values["attack-flip"], DATASETS[values["dataset"]].classes)
        except ConfigError as exc:
            found.append(Invalid("attack-flip", values["attack-flip"], str(exc)))
    shares = {k: values[k] for k in SPLIT_SHARES}
    total = sum(shares.values())
    if all(RANGES[k].holds(v) for k, v in shares.items()) and total >= 1:
        found.append(Invalid(" + ".join(shares), round(total, 6), "must be below 1"))
    if values["client-statistics"] and values["dp-noise"] > 0:
        found.append(
            Invalid(
                "client-statistics",
                values["client-statistics"],
                "must be 0 with dp-noise > 0: the noise privatises soft predictions, not "
                "class statistics (set dp-noise = 0, or client-statistics = 0)",
            )
        )
    return found
