"""A flag that mirrors a run-config key takes its help, shown default, type and choices from
``RunConfig`` (one source of truth), unless a command passes its own."""

from __future__ import annotations

import argparse

import pytest

from cli.main import build_parser
from cli.options import add_mirror, build, explicit, given_flags
from cli.simulate import SIMULATE_FLAGS
from common.config import SETTINGS, RunConfig
from common.config_rules import CHOICES
from common.errors import ConfigError


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def test_a_mirror_takes_everything_from_the_setting() -> None:
    p = argparse.ArgumentParser()
    add_mirror(p, "--clients", "num-clients")
    add_mirror(p, "--dataset", "dataset")
    add_mirror(p, "--data-dir", "data-dir")
    clients = _action(p, "--clients")
    assert clients.help == f"{SETTINGS['num-clients'].help} (default: 20; --set num-clients)"
    assert (clients.default, clients.type, clients.choices) == (None, int, None)
    dataset = _action(p, "--dataset")
    assert dataset.choices == CHOICES["dataset"] and dataset.type is None
    data_dir = _action(p, "--data-dir")
    assert data_dir.help is not None
    assert "(default: $SKYDISTILL_DATA or ../shared/data; --set data-dir)" in data_dir.help
    assert p.parse_args(["--clients", "3"]).clients == 3
    with pytest.raises(SystemExit):
        p.parse_args(["--dataset", "sar"])


def test_a_command_can_word_its_own_default_help_type_and_choices() -> None:
    p = argparse.ArgumentParser()
    add_mirror(p, "--clients", "num-clients", 100, "simulated clients", type=int, nargs="+")
    add_mirror(p, "--attack", "attack", "mixed", "what they send", choices=("random",))
    add_mirror(p, "--ground-gap", "archive-gap", "", "the gap")
    assert _action(p, "--clients").help == "simulated clients (default: 100; --set num-clients)"
    assert _action(p, "--attack").choices == ("random",)
    assert _action(p, "--ground-gap").help == 'the gap (default: ""; --set archive-gap)'


@pytest.mark.parametrize(("flag", "key"), SIMULATE_FLAGS.items())
def test_simulate_mirrors_state_the_settings_help_and_default(flag: str, key: str) -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    action = _action(sub.choices["simulate"], flag)
    s = SETTINGS[key]
    assert action.help == f"{s.help} (default: {s.shown_default}; --set {key})"
    assert action.default is None
    assert action.choices == CHOICES.get(key)


def test_given_flags_and_explicit_values() -> None:
    args = argparse.Namespace(clients=4, rounds=None, data_dir=None, set=["alpha=0.2"])
    flags = {"--clients": "num-clients", "--rounds": "num-rounds", "--data-dir": "data-dir"}
    assert given_flags(args, flags) == ["--clients"]
    values, sources = explicit(args, flags)
    assert values == {"alpha": "0.2", "num-clients": 4}
    assert sources == {"alpha": "--set alpha=0.2", "num-clients": "--clients 4"}
    cfg = build(RunConfig(seed=7), values, sources, {"num-rounds": 2})
    assert (cfg.alpha, cfg.num_clients, cfg.num_rounds, cfg.seed) == (0.2, 4, 2, 7)
    with pytest.raises(ConfigError, match="--clients 0: num-clients must be at least 1"):
        build(RunConfig(), {"num-clients": 0}, {"num-clients": "--clients 0"})
