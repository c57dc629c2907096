"""Options that mirror run-config keys, and the one way a command merges them with ``--set``.

Precedence, on every command that takes ``--set``: an explicit flag > ``--set KEY=VALUE`` >
the command's own defaults (e.g. ``bench_defaults()``) > ``RunConfig``'s defaults. A flag that
mirrors a key defaults to None, so that "not given" can be told from "given the default
value"; its help text states the effective default instead. Its help, default, type and
choices are the key's own (``common.config.SETTINGS``, ``common.config_rules.CHOICES``) unless
the command gives its own. A key given both as a flag and with ``--set`` with different values
is an error, and so is a ``--set`` of a key the command sets itself (``fixed``). Bad values
are reported by the flag or ``--set`` item that gave them:
``--clients 0: num-clients must be at least 1``.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from common.config import SETTINGS, RunConfig
from common.config_rules import CHOICES, InvalidSettings, Range
from common.errors import ConfigError

KEYS = tuple(SETTINGS)
SET_HELP = "{what} (keys: README, Run config), e.g. --set {example}; repeatable"


def add_mirror(
    parser: argparse.ArgumentParser,
    flag: str,
    key: str,
    default: object = None,
    help: str | None = None,
    **kw: Any,
) -> None:
    """``flag`` for run-config ``key``: None unless given, so that ``--set key=...`` can win
    over the default, which the help text shows (once). The default shown, the help text, the
    type (int, float) and the choices are the key's own unless the command passes its own
    (e.g. a benchmark's ``default`` over ``RunConfig``'s)."""
    setting = SETTINGS[key]
    shown = setting.shown_default if default is None else '""' if default == "" else default
    text = setting.help if help is None else help
    if setting.type is not str:
        kw.setdefault("type", setting.type)
    if key in CHOICES:
        kw.setdefault("choices", CHOICES[key])
    parser.add_argument(flag, default=None, help=f"{text} (default: {shown}; --set {key})", **kw)


def add_set(
    parser: argparse.ArgumentParser, example: str, what: str = "set any run-config key"
) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=SET_HELP.format(what=what, example=example),
    )


def ranged(kind: type[int] | type[float], bounds: Range) -> Callable[[str], Any]:
    """An argparse ``type`` for options that are not run-config keys: a number in ``bounds``
    (``argument --runs: must be at least 1, got 0``)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        if not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"{bounds.rule(kind is int)}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def parse_sets(items: list[str]) -> dict[str, str]:
    """``["alpha=0.1", ...]`` as key -> raw text; a key given twice must agree."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set alpha=0.1")
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean {close[0]}?" if close else "see README, Run config"
            raise ConfigError(f"--set {item}: unknown run-config key {key!r}; {hint}")
        if key in out and out[key] != value:
            raise ConfigError(
                f"--set {key}={out[key]} and --set {key}={value} disagree: give {key} once"
            )
        out[key] = value
    return out


def _show(value: object) -> str:
    """A flag's value as the user typed it (``-1``, not ``-1.0``)."""
    if isinstance(value, list | tuple):
        return " ".join(_show(v) for v in value)
    text = str(value)
    return text[:-2] if isinstance(value, float) and text.endswith(".0") else text


def _same(given: object, raw: str) -> bool:
    """Whether a flag's parsed value and a ``--set`` text mean the same value."""
    if isinstance(given, list | tuple):
        return len(given) == 1 and _same(given[0], raw)
    if isinstance(given, int | float):
        try:
            return float(raw) == float(given)
        except ValueError:
            return False
    if isinstance(given, Path):
        return Path(raw) == given
    return str(given) == raw


def _given(args: argparse.Namespace, flag: str) -> Any:
    """The value of ``flag`` on the command line; None when it was not given."""
    return getattr(args, flag.lstrip("-").replace("-", "_"))


def given_flags(args: argparse.Namespace, flags: Mapping[str, str]) -> list[str]:
    """Those of ``flags`` (flag -> key) that the user gave."""
    return [flag for flag in flags if _given(args, flag) is not None]


def explicit(
    args: argparse.Namespace, flags: Mapping[str, str], fixed: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The run-config values the user gave (flags over ``--set``) and, for each key, what gave
    it (``--clients 0``, ``--set num-clients=0``), for error messages."""
    sets = parse_sets(getattr(args, "set", None) or [])
    for key, why in (fixed or {}).items():
        if key in sets:
            raise ConfigError(f"--set {key}={sets[key]}: {why}")
    values: dict[str, Any] = dict(sets)
    sources = {key: f"--set {key}={value}" for key, value in sets.items()}
    for flag, key in flags.items():
        given = _given(args, flag)
        if given is None:
            continue
        if key in sets and not _same(given, sets[key]):
            raise ConfigError(
                f"{flag} {_show(given)} and --set {key}={sets[key]} disagree: give {key} once"
            )
        values[key] = str(given) if isinstance(given, Path) else given
        sources[key] = f"{flag} {_show(given)}"
    return values, sources


def build(
    defaults: RunConfig,
    values: Mapping[str, Any],
    sources: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> RunConfig:
    """``defaults`` with the user's ``values`` (and the command's ``extra``) on top; a bad
    value is reported by the flag or ``--set`` item that gave it."""
    try:
        return defaults.with_values({**values, **(extra or {})})
    except InvalidSettings as exc:
        raise exc.with_sources(sources) from None


def merge(
    args: argparse.Namespace,
    flags: Mapping[str, str],
    defaults: RunConfig,
    fixed: Mapping[str, str] | None = None,
) -> RunConfig:
    """The run config a command runs with: flags > ``--set`` > ``defaults``."""
    values, sources = explicit(args, flags, fixed)
    return build(defaults, values, sources)
