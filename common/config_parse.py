"""Run-config values from text: a TOML or ``--set`` value as its field's type, the role cycle
(``"satellite,drone"``), the per-role settings (``"satellite=0.2,drone=0.05"``) and the ground
gap (``"3:0.05"``)."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from common.errors import ConfigError

ROLES = ("satellite", "drone", "ground-station")
TYPE_RULES = {int: "must be an integer", float: "must be a number", str: "must be text"}


def coerce(value: Any, target: type) -> Any:
    """A run-config value (TOML-typed, or a string from ``--set``) as the field's type."""
    if isinstance(value, bool) and target is not str:
        raise TypeError  # true is not 1 round
    if target is int and isinstance(value, float) and not value.is_integer():
        raise ValueError  # 2.5 rounds is a mistake, not 2
    if target is int and isinstance(value, str):
        return int(value.strip())  # int("2.5") is an error too
    return target(value)


def role_cycle(roles: str) -> tuple[str, ...]:
    """``"satellite, drone"`` -> ("satellite", "drone"): the roles clients take in turn."""
    return tuple(r.strip() for r in roles.split(",") if r.strip())


def parse_archive_gap(text: str) -> tuple[int, float]:
    """``"3:0.05"`` -> (3, 0.05): how many classes are scarce at the ground, and what share
    of their archive tiles the ground keeps; ``""`` -> (0, 1.0), no gap."""
    text = text.strip()
    if not text:
        return 0, 1.0
    count, sep, keep = text.partition(":")
    try:
        n, share = int(count), float(keep)
    except ValueError:
        n, share = -1, -1.0
    if not sep or n < 1 or not 0 <= share < 1:
        raise ConfigError(
            "must be N:KEEP with N >= 1 scarce classes and KEEP in [0, 1) the share of their "
            "archive tiles the ground keeps, e.g. 3:0.05"
        )
    return n, share


def role_values(
    text: str,
    key: str,
    roles: tuple[str, ...],
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
) -> dict[str, float]:
    """Parse ``"satellite=0.2,drone=0.05"`` (or one number for every role) into role -> value.

    Roles not named are absent (their feature is off). Values must lie in [low, high]
    (or (low, high] with ``low_open``)."""
    text = text.strip()
    if not text:
        return {}
    example = f"e.g. {key}='satellite=0.2,drone=0.05' or {key}='0.1' for every role"
    if "=" not in text:
        items = [(role, text) for role in roles]
    else:
        items = []
        for item in text.split(","):
            role, sep, value = item.partition("=")
            if not sep or not role.strip():
                raise ConfigError(f"{key}: {item.strip()!r} is not ROLE=VALUE ({example})")
            items.append((role.strip(), value))
    out: dict[str, float] = {}
    for role, value in items:
        if role not in ROLES:
            raise ConfigError(f"{key}: unknown role {role!r}: choose from {', '.join(ROLES)}")
        if role in out:
            raise ConfigError(f"{key}: role {role!r} is given twice")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                f"{key}: {value.strip()!r} for {role} is not a number ({example})"
            ) from None
        too_low = number <= low if low_open else number < low
        if not math.isfinite(number) or too_low or (high is not None and number > high):
            bounds = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'}]"
            raise ConfigError(f"{key}: {role}={number:g} is outside {bounds}")
        out[role] = number
    return out


def read_toml_values(path: Path) -> dict[str, Any]:
    """The keys of the run-config TOML file ``path`` (a flat file of ``[tool.flwr.app.config]``
    keys, as ``simulate`` writes beside a run), not yet checked against ``RunConfig``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the run config {path} ({exc.strerror or exc}): give the TOML file of "
            "run-config keys (a deployment's, or the run.toml that simulate writes beside a run)"
        ) from exc
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"run config {path} is not valid TOML ({exc}): write one `key = value` per line, "
            'e.g. num-rounds = 10 or data-dir = "/data/public"'
        ) from exc
    tables = sorted(k for k, v in values.items() if isinstance(v, dict))
    if tables:
        raise ConfigError(
            f"run config {path} has tables ({', '.join(tables)}): a run config is a flat file "
            "of [tool.flwr.app.config] keys (num-rounds = 10, seed = 42, ...), not a pyproject"
        )
    return values
