"""Explicit values win over defaults on every command that takes ``--set`` (issue 19).

For every run-config key that also has a flag on a command: ``--set KEY=VALUE`` alone wins
over the flag's default, the flag alone wins over the command's default, both with the same
value are fine, both with different values are an error naming both. Tested on the config
each command would really run with (the pure functions the commands call), and through
``cli.main.main`` for the error paths (exit code 2, the message on stderr).
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli import bench_args, bench_flags
from cli.main import build_parser, main
from cli.simulate import SIMULATE_FLAGS, simulate_config
from common.config import RunConfig
from common.fleet.scenario import SCENARIO_DIR
from simulations.simulate import with_paths, write_run_config

# A value other than every command's default, per key, as typed on the command line.
OTHER: dict[str, str] = {
    "num-clients": "400",  # more than bench robust's 20 attackers and scale's 100 per round
    "num-rounds": "5",
    "alpha": "0.3",
    "seed": "7",
    "dataset": "ms",
    "data-dir": "/somewhere/data",
    "test-dir": "/somewhere/test",
    "scenario": "small",
    "schedule": "synchronous",
    "attack": "random",
    "attack-scale": "3.5",
    "round-window-minutes": "30",
    "max-staleness": "2",
    "staleness-decay": "0.7",
    "shard-size": "20",
    "reference-per-round": "64",
    "archive-gap": "2:0.1",  # bench robust's default is 3:0.05
}


def _simulate(args: argparse.Namespace) -> RunConfig:
    return simulate_config(args)


def _distill(args: argparse.Namespace) -> RunConfig:
    return bench_args.distill_bench(args).config()  # what every federated method runs with


def _robust(args: argparse.Namespace) -> RunConfig:
    return with_paths(bench_args.robust_bench(args).config(), Path("/tmp/robust-work"))


def _onboard(args: argparse.Namespace) -> RunConfig:
    return bench_args.onboard_bench(args).base


def _fleet(args: argparse.Namespace) -> RunConfig:
    return with_paths(bench_args.fleet_bench(args).config("contact-aware"), Path("/tmp/fleet"))


def _scale(args: argparse.Namespace) -> RunConfig:
    bench = bench_args.scale_bench(args)
    folder = Path("/tmp/scale-work")
    return with_paths(bench.config(bench.clients[0], folder), folder / "flower")


COMMANDS: dict[str, tuple[list[str], dict[str, str], Callable[[argparse.Namespace], RunConfig]]] = {
    "simulate": (["simulate"], SIMULATE_FLAGS, _simulate),
    "distill": (["bench", "distill"], bench_flags.DISTILL_FLAGS, _distill),
    "robust": (["bench", "robust"], bench_flags.ROBUST_FLAGS, _robust),
    "onboard": (["bench", "onboard"], bench_flags.ONBOARD_FLAGS, _onboard),
    "fleet": (["bench", "fleet"], bench_flags.FLEET_FLAGS, _fleet),
    "scale": (["bench", "scale"], bench_flags.SCALE_FLAGS, _scale),
}
CASES = [
    (name, flag, key) for name, (_, flags, _) in COMMANDS.items() for flag, key in flags.items()
]
IDS = [f"{name}{flag}" for name, flag, _ in CASES]


def _config(name: str, *argv: str) -> RunConfig:
    prefix, _, build = COMMANDS[name]
    return build(build_parser().parse_args([*prefix, *argv]))


def _expected(key: str, text: str) -> Any:
    value = RunConfig.from_mapping({key: text}).to_mapping()[key]
    if key == "scenario":  # the command resolves a scenario name to its file
        return str(SCENARIO_DIR / f"{text}.toml")
    if key in ("data-dir", "test-dir"):
        return str(Path(text).resolve())
    return value


def _got(cfg: RunConfig, key: str) -> Any:
    value = cfg.to_mapping()[key]
    return str(Path(value).resolve()) if key in ("data-dir", "test-dir") else value


def _default(name: str, key: str) -> Any:
    return _got(_config(name), key)


@pytest.mark.parametrize(("name", "flag", "key"), CASES, ids=IDS)
def test_set_wins_over_the_flag_default(name: str, flag: str, key: str) -> None:
    text = OTHER[key]
    assert _default(name, key) != _expected(key, text)  # the test value is not the default
    assert _got(_config(name, "--set", f"{key}={text}"), key) == _expected(key, text)


@pytest.mark.parametrize(("name", "flag", "key"), CASES, ids=IDS)
def test_the_flag_wins_and_agrees_with_an_equal_set(name: str, flag: str, key: str) -> None:
    text = OTHER[key]
    assert _got(_config(name, flag, text), key) == _expected(key, text)
    assert _got(_config(name, flag, text, "--set", f"{key}={text}"), key) == _expected(key, text)


@pytest.mark.parametrize(("name", "flag", "key"), CASES, ids=IDS)
def test_a_flag_and_a_different_set_are_an_error_naming_both(
    name: str, flag: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = COMMANDS[name][0]
    other = {"scenario": "leo50", "data-dir": "/elsewhere", "test-dir": "/elsewhere"}.get(
        key, RunConfig().to_mapping()[key]
    )
    assert main([*prefix, flag, OTHER[key], "--set", f"{key}={other}"]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {OTHER[key]} and --set {key}={other} disagree" in err


def test_simulate_writes_what_was_set_to_run_config_toml(tmp_path: Path) -> None:
    """The issue's own command: run-config.toml gets the values given with --set."""
    argv = [
        "simulate", "--set", "alpha=0.1", "--set", "num-rounds=3", "--set", "num-clients=4",
        "--set", "seed=7", "--set", "dataset=ms",
    ]  # fmt: skip
    args = build_parser().parse_args(argv)
    written = tomllib.loads(
        write_run_config(simulate_config(args), tmp_path / "rc.toml").read_text()
    )
    assert (written["alpha"], written["num-rounds"], written["num-clients"]) == (0.1, 3, 4)
    assert (written["seed"], written["dataset"]) == (7, "ms")


def test_a_scenario_sets_the_client_count_and_refuses_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _config("simulate", "--set", "scenario=small")
    assert cfg.num_clients == _config("simulate", "--scenario", "small").num_clients
    assert main(["simulate", "--scenario", "small", "--clients", "999"]) == 2
    assert "--clients 999: scenario small has" in capsys.readouterr().err


def test_bench_flags_reach_the_benchmark_fields() -> None:
    args = build_parser().parse_args(["bench", "distill", "--set", "num-clients=12"])
    base = bench_args.distill_bench(args).base
    assert (base.num_clients, base.num_rounds, base.alpha) == (12, 30, 0.1)  # the rest: defaults
    assert base.reference_per_round == 500  # the bench's own setting still under --set
    assert bench_args.scale_bench(_args("scale")).clients == (1_000, 10_000)
    assert bench_args.scale_bench(_args("scale", "--set", "num-clients=500")).clients == (500,)
    assert bench_args.scale_bench(_args("scale", "--clients", "8", "9")).clients == (8, 9)


def _help(prefix: list[str], flag: str) -> str:
    parser = build_parser()
    for name in prefix:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return str(parser._get_formatter()._expand_help(action))


# Flags whose help names their default in words, not as the value the bench runs with.
SHOWN_IN_WORDS = {"data-dir", "test-dir", "archive-gap", "scenario"}
BENCH_CASES = [
    (name, flag, key)
    for name, flag, key in CASES
    if COMMANDS[name][0][0] == "bench"
    and key not in SHOWN_IN_WORDS
    and (name, key) != ("scale", "num-clients")  # a sweep: see the next test
]


@pytest.mark.parametrize(("name", "flag", "key"), BENCH_CASES, ids=lambda v: str(v))
def test_a_bench_flag_shows_the_default_the_bench_runs_with(name: str, flag: str, key: str) -> None:
    ran = _default(name, key)
    assert f"(default: {ran}; --set {key})" in _help(COMMANDS[name][0], flag)


def test_the_scale_sweep_is_shown_as_it_runs() -> None:
    sizes = " ".join(str(n) for n in bench_args.scale_bench(_args("scale")).clients)
    assert f"(default: {sizes}; --set num-clients)" in _help(["bench", "scale"], "--clients")


def _args(name: str, *argv: str) -> argparse.Namespace:
    return build_parser().parse_args([*COMMANDS[name][0], *argv])


ERRORS = [
    (
        ["simulate", "--set", "num-rounds=abc"],
        "--set num-rounds=abc: num-rounds must be an integer",
    ),
    (["simulate", "--clients", "0"], "--clients 0: num-clients must be at least 1"),
    (["simulate", "--alpha", "-1"], "--alpha -1: alpha must be >= 0 (0 = IID)"),
    (["simulate", "--set", "alpha=-0.5"], "--set alpha=-0.5: alpha must be >= 0 (0 = IID)"),
    (["simulate", "--seed", "-3"], "--seed -3: seed must be at least 0"),
    (["simulate", "--set", "fraction-train=0"], "fraction-train must be in (0, 1]"),
    (
        ["simulate", "--set", "num-rundes=3"],
        "unknown run-config key 'num-rundes'; did you mean num-rounds?",
    ),
    (["simulate", "--set", "resume=1"], "--set resume=1: continue a run with --resume DIR"),
    (["bench", "distill", "--rounds", "0"], "--rounds 0: num-rounds must be at least 1"),
    (
        ["bench", "distill", "--set", "num-clients=x"],
        "--set num-clients=x: num-clients must be an integer",
    ),
    (
        ["bench", "distill", "--set", "method=fedavg"],
        "--set method=fedavg: bench distill sets it per method",
    ),
    (["bench", "robust", "--alpha", "-2"], "--alpha -2: alpha must be >= 0 (0 = IID)"),
    (
        ["bench", "robust", "--clients", "10", "--attackers", "10"],
        "--attackers 10: must be fewer than the 10 clients",
    ),
    (["bench", "robust", "--set", "attackers=0.2"], "--set attackers=0.2: use --attackers"),
    (
        ["bench", "onboard", "--set", "batch-size=0"],
        "--set batch-size=0: batch-size must be at least 1",
    ),
    (["bench", "fleet", "--decay", "0"], "--decay 0: staleness-decay must be in (0, 1]"),
    (
        ["bench", "fleet", "--max-staleness", "101"],
        "--max-staleness 101: max-staleness must be between 0 and 100",
    ),
    (
        ["bench", "fleet", "--set", "num-rounds=5"],
        "--set num-rounds=5: set from --hours and --aware-hours",
    ),
    (["bench", "scale", "--clients", "1000", "0"], "--clients 0: num-clients must be at least 1"),
    (["bench", "scale", "--shard-size", "-1"], "--shard-size -1: shard-size must be at least 0"),
    (
        ["bench", "scale", "--set", "num-clients=0"],
        "--set num-clients=0: num-clients must be at least 1",
    ),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_bad_values_name_the_flag_the_value_and_the_range(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = ["--out", str(tmp_path)]
    assert main([*argv, *out]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not list(tmp_path.iterdir())  # refused before anything started


def test_all_bad_values_are_reported_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--clients", "0", "--alpha", "-1", "--set", "trim=0.7"]) == 2
    err = capsys.readouterr().err
    assert (
        "--clients 0: num-clients must be at least 1; --alpha -1: alpha must be >= 0 (0 = IID); "
        "--set trim=0.7: trim must be in (0, 0.5)" in err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--clients", "abc"], "argument --clients: invalid int value: 'abc'"),
        (["bench", "onboard", "--runs", "0"], "argument --runs: must be at least 1, got 0"),
        (["bench", "fleet", "--target", "1.5"], "argument --target: must be in (0, 1], got 1.5"),
    ],
)
def test_options_that_are_not_run_config_keys_are_checked_by_the_parser(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
