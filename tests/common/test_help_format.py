"""The one ``--help`` style: meaningful defaults once, kebab-case names never split."""

from __future__ import annotations

import argparse

from common.help_format import DefaultsHelpFormatter, use_everywhere


def _entry(parser: argparse.ArgumentParser, flag: str) -> str:
    formatter = parser._get_formatter()
    formatter.add_argument(next(a for a in parser._actions if flag in a.option_strings))
    return " ".join(formatter.format_help().split())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    p.add_argument("--unset", help="nothing set")
    p.add_argument("--switch", action="store_true", help="a switch")
    p.add_argument("--many", action="append", default=[], help="repeatable")
    p.add_argument("--empty", default="", help="empty text")
    p.add_argument("--needed", required=True, default="x", help="must be given")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--stated", default=None, help="rounds (default: 10; --set num-rounds)")
    p.add_argument("--own", default=3, help="three (default: %(default)s)")
    p.add_argument("name", nargs="?", default="eurosat", help="dataset")
    p.add_argument("fixed", help="a plain positional")
    return p


def test_defaults_that_say_nothing_are_left_out() -> None:
    p = _parser()
    for flag in ("--unset", "--switch", "--many", "--empty", "--needed"):
        assert "default" not in _entry(p, flag), flag


def test_a_meaningful_default_is_printed_once() -> None:
    p = _parser()
    assert _entry(p, "--port").endswith("port to listen on (default: 8000)")
    assert _entry(p, "--seed").endswith("seed (default: 0)")  # 0 is a value, not "unset"
    assert _entry(p, "--stated").count("default") == 1
    assert _entry(p, "--own").endswith("three (default: 3)")
    text = p.format_help()
    assert "dataset (default: eurosat)" in " ".join(text.split())
    assert "a plain positional (default" not in text


def test_kebab_case_names_are_never_split_across_lines() -> None:
    words = "set num-clients and num-supernodes with --federation-config num-supernodes=N " * 4
    p = argparse.ArgumentParser(description=words, formatter_class=DefaultsHelpFormatter)
    p.add_argument("--x", help=words)
    formatter = p._get_formatter()
    formatter._width = 30  # narrow: many line breaks, none of them at a hyphen
    formatter.add_text(p.description)
    formatter.add_argument(p._actions[-1])
    lines = formatter.format_help().splitlines()
    assert len(lines) > 10
    assert not any(line.rstrip().endswith("-") for line in lines), lines


def test_use_everywhere_reaches_nested_sub_commands() -> None:
    top = argparse.ArgumentParser()
    data = top.add_subparsers().add_parser("data")
    fetch = data.add_subparsers().add_parser("fetch")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds")
    use_everywhere(top)
    for parser in (top, data, fetch):
        assert parser.formatter_class is DefaultsHelpFormatter
    assert _entry(fetch, "--timeout").endswith("seconds (default: 60.0)")
