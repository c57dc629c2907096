"""One ``--help`` style for every skydistill command.

Each option's default is printed once, and only where it is a value a user could rely on:
argparse's ``(default: X)`` is left out for defaults that say nothing (``None``, ``False``,
empty lists and strings, required options) and for help texts that state their default
themselves (the run-config mirroring flags, ``unset: ...``). Lines never break inside
kebab-case names such as ``num-clients`` or ``--federation-config``.
"""

from __future__ import annotations

import argparse
import textwrap

DEFAULT_NOTE = " (default: %(default)s)"


def _says_nothing(default: object) -> bool:
    """A default not worth printing: unset, a switch that is off, an empty list or string."""
    if default is None or default is False or default == argparse.SUPPRESS:
        return True
    return isinstance(default, str | list | tuple | dict | set) and not default


def _states_default(text: str) -> bool:
    """Whether a help text already says what its default is."""
    return "%(default)" in text or "default:" in text or "(default" in text


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's help, with each meaningful default appended once, kebab-case kept whole."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        positional_default = action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)
        if (
            action.required
            or _says_nothing(action.default)
            or _states_default(text)
            or not (action.option_strings or positional_default)
        ):
            return text
        return text + DEFAULT_NOTE

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )


def use_everywhere(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` and all its sub-command parsers, however deep, this help style."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                use_everywhere(sub)
    return parser
