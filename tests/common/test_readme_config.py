"""The README's run-config table lists every ``RunConfig`` key with its real default, and no
key that does not exist."""

from __future__ import annotations

import re

import pytest

from common.config import SETTINGS
from common.config_fields import Setting
from common.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def table_defaults(readme: str) -> dict[str, str]:
    """Each key of the table under ``## Run config`` and its default as written: a row names
    one or more keys (`num-rounds`, `num-clients`) and as many defaults (10, 20)."""
    section = readme.split("\n## Run config\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        keys_cell, defaults_cell, _ = (c.strip() for c in line.strip("| ").split(" | ", 2))
        keys = re.findall(r"`([^`]+)`", keys_cell)
        defaults = [d.strip() for d in defaults_cell.split(", ")]
        assert len(keys) == len(defaults), f"{keys}: {len(defaults)} defaults in {line[:80]}"
        for key, default in zip(keys, defaults, strict=True):
            assert key not in found, f"{key} is in the table twice"
            found[key] = default
    return found


def parse_default(text: str, s: Setting) -> object:
    """A default as written in the table: text in backticks (`""` for empty), numbers bare."""
    if s.type is str:
        quoted = re.fullmatch(r"`([^`]*)`", text)
        assert quoted, f"{s.key}: write the text default {text} in backticks"
        return "" if quoted[1] == '""' else quoted[1]
    try:
        return s.type(text)
    except ValueError:
        raise AssertionError(f"{s.key}: {text!r} is not a {s.type.__name__}") from None


def test_every_key_is_in_the_table_with_its_default() -> None:
    written = table_defaults(README.read_text())
    assert sorted(set(SETTINGS) - set(written)) == [], "keys missing from the README table"
    assert sorted(set(written) - set(SETTINGS)) == [], "README keys that RunConfig lacks"
    wrong = {
        key: (text, SETTINGS[key].default)
        for key, text in written.items()
        if parse_default(text, SETTINGS[key]) != SETTINGS[key].default
    }
    assert wrong == {}, "README default (as written) != RunConfig default"


SAMPLE = """# x

## Run config

| key | default | meaning |
|---|---|---|
| `num-rounds`, `num-clients` | 10, 20 | rounds |
| `teacher-refine-lr` | 3e-4 | rate |
| `roles`, `data-dir` | `satellite,drone,ground-station`, `""` | roles |

## Next

| `alpha` | 9 | not in the section |
"""


def test_the_table_parser_reads_what_it_should_and_catches_mistakes() -> None:
    written = table_defaults(SAMPLE)
    assert written == {
        "num-rounds": "10",
        "num-clients": "20",
        "teacher-refine-lr": "3e-4",
        "roles": "`satellite,drone,ground-station`",
        "data-dir": '`""`',
    }
    assert {k: parse_default(v, SETTINGS[k]) for k, v in written.items()} == {
        k: SETTINGS[k].default for k in written
    }
    with pytest.raises(AssertionError, match="3 defaults"):
        table_defaults(SAMPLE.replace("| 10, 20 |", "| 10, 20, 30 |"))
    with pytest.raises(AssertionError, match="1 defaults"):
        table_defaults(SAMPLE.replace("| 10, 20 |", "| 10 |"))
    with pytest.raises(AssertionError, match="twice"):
        table_defaults(SAMPLE.replace("`teacher-refine-lr`", "`num-rounds`"))
    with pytest.raises(AssertionError, match="backticks"):
        parse_default("rgb", SETTINGS["dataset"])
    with pytest.raises(AssertionError, match="not a int"):
        parse_default("0.5", SETTINGS["num-rounds"])
    assert parse_default("11", SETTINGS["num-rounds"]) != SETTINGS["num-rounds"].default
