"""Every option of the agent, export, predict, data fetch, data scene, server, register and
certs commands has a help text, and ``--help`` prints a default once, only where there is one
to print."""

from __future__ import annotations

import argparse
import re

import pytest

from cli.main import build_parser
from common.help_format import DefaultsHelpFormatter

COMMANDS = [("agent",), ("export",), ("predict",), ("data", "fetch"), ("data", "scene"),
            ("server",), ("register",), ("submit",), ("certs",)]  # fmt: skip


def _parser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_help_and_each_default_is_printed_once(path: tuple[str, ...]) -> None:
    parser = _parser(path)
    for action in parser._actions:
        assert action.help, f"{' '.join(path)} {action.option_strings or action.dest}: no help"
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: [])" not in text and "(default: )" not in text
    entries = re.split(r"\n  (?=-)", text)
    for entry in entries:
        assert entry.count("default:") <= 1, entry


@pytest.mark.parametrize(
    ("path", "option", "words"),
    [
        (("agent",), "--role", "platform of this node"),
        (("agent",), "--dataset", "(default: rgb)"),
        (("agent",), "--node-config", "num-threads"),
        (("data", "scene"), "--rows", "(default: 16)"),
        (("data", "scene"), "--cols", "tiles across"),
        (("data", "scene"), "--seed", "(default: 0)"),
        (("export",), "--quant-format", "(default: qdq)"),
        (("server",), "--host", "(default: 0.0.0.0)"),
        (("server",), "--port", "(default: 8000)"),
    ],
)
def test_the_options_the_issue_names_say_what_they_do(
    path: tuple[str, ...], option: str, words: str
) -> None:
    parser = _parser(path)
    formatter = parser._get_formatter()
    formatter.add_argument(next(a for a in parser._actions if option in a.option_strings))
    entry = " ".join(formatter.format_help().split())
    assert words in entry, entry


def _all_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _all_parsers(sub, (*path, name))
    return found


def test_every_parser_uses_the_one_help_style() -> None:
    parsers = _all_parsers(build_parser())
    assert len(parsers) > 10
    for path, parser in parsers:
        assert parser.formatter_class is DefaultsHelpFormatter, " ".join(path) or "skydistill"


def test_simulate_help_names_the_files_it_writes() -> None:
    text = " ".join(_parser(("simulate",)).format_help().split())
    for name in ("OUT/report.json", "OUT/accuracy.png", "OUT/run.log", "OUT/server.log"):
        assert name in text, name
