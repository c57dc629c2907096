"""How a run-config setting is declared, and the table of every declared one.

A ``RunConfig`` field is ``setting(default, help)``: its one default, what it does (the help
text of every command-line flag that mirrors it) and, for text whose default is "", what an
empty value means. ``table`` reads the declarations back as ``Setting`` records by key.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T", int, float, str)


def setting(default: T, help: str, empty: str = "") -> T:
    """A ``RunConfig`` field with its default, its help text and what "" means."""
    return field(default=default, metadata={"help": help, "empty": empty})


@dataclass(frozen=True)
class Setting:
    """One run-config key as its field declares it."""

    key: str  # kebab-case, as in the run config: num-clients
    name: str  # the field: num_clients
    type: type[int] | type[float] | type[str]
    default: int | float | str
    help: str
    empty: str  # what "" means, for text that defaults to ""

    @property
    def shown_default(self) -> object:
        """The default as a ``--help`` text shows it: what an empty value means, or ``""``."""
        if self.default == "":
            return self.empty or '""'
        return self.default


def _setting(f: Field[Any]) -> Setting:
    default = f.default
    if not isinstance(default, int | float | str) or "help" not in f.metadata:
        raise TypeError(f"{f.name}: declare a run-config field as setting(default, help)")
    key = f.name.replace("_", "-")
    return Setting(key, f.name, type(default), default, f.metadata["help"], f.metadata["empty"])


def table(cls: type) -> dict[str, Setting]:
    """Every field of the dataclass ``cls`` by its kebab-case key, in field order."""
    return {s.key: s for s in map(_setting, fields(cls))}
