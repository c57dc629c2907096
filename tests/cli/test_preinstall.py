"""``skydistill preinstall``: the files an edge agent needs, built at the ground and loaded by
an agent whose cache holds only the copies; bad run configs are clear errors (exit 2)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from cli import main as cli
from cli import preinstall as preinstall_cli
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import Federation, load_federation
from common.help_format import use_everywhere
from common.model_cache import cache_path
from common.preinstalled import cache_entry, preinstalled_student
from common.settings import cache_dir
from common.training import accuracy
from simulations.deployment import agent_archs

# A deployment's run.toml: the agents' path of the public archive (the ground passes its own
# copy with --data-dir), tiny epochs. The seed is this file's own: the first build is cold.
RUN_TOML = """\
data-dir = "/nonexistent/public"   # where the agents hold it
num-clients = 3
num-rounds = 2
batch-size = 8
teacher-epochs = 1
global-pretrain-epochs = 0
preinstall-epochs = 1
seed = 1907
"""
ROLE_ARCHS = {"satellite": "tiny", "drone": "small", "ground-station": "medium"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skydistill")
    preinstall_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return use_everywhere(parser)


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """The real ``skydistill`` entry point (its error handling and exit codes), with the
    preinstall command added when build_parser does not have it yet."""
    build = cli.build_parser

    def with_preinstall() -> argparse.ArgumentParser:
        parser = build()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and "preinstall" not in (
                action.choices
            ):
                preinstall_cli.add_parser(action)
        return use_everywhere(parser)

    monkeypatch.setattr(cli, "build_parser", with_preinstall)
    return cli.main(argv)


def test_the_files_appear_in_out_and_load_as_the_agents_preinstalled_students(
    fixture_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(RUN_TOML)
    out = tmp_path / "preinstalled"
    args = _parser().parse_args(
        [
            *("preinstall", "--run-config", str(run_toml), "--data-dir", str(fixture_data)),
            *("--out", str(out), "--agent-cache", "/var/cache/skydistill/"),
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out

    cfg = preinstall_cli.read_run_config(run_toml, str(fixture_data))
    fed = load_federation(cfg)
    ground_cache = cache_dir()
    names = {arch: cache_path(*_entry(cfg, fed, arch)).name for arch in ROLE_ARCHS.values()}
    assert sorted(p.name for p in out.iterdir()) == sorted(names.values())  # only the .pt files
    for role, arch in ROLE_ARCHS.items():
        copy = out / names[arch]
        assert copy.read_bytes() == (ground_cache / names[arch]).read_bytes()
        assert f"  {role}: {copy} ({arch} student, test accuracy 0." in printed
        assert f"(/var/cache/skydistill/{names[arch]})" in printed
        assert f"copy: scp {copy} NODE:/var/cache/skydistill/   # NODE: each {role}" in printed

    # An agent: its SKYDISTILL_CACHE holds the copied files and nothing else.
    agent_cache = tmp_path / "agent-cache"
    agent_cache.mkdir()
    for path in out.iterdir():
        shutil.copy(path, agent_cache)
    monkeypatch.setenv("SKYDISTILL_CACHE", str(agent_cache))
    test = fed.test_split()
    for role, arch in ROLE_ARCHS.items():
        model = preinstalled_student(cfg, fed, cfg.arch_of(role))
        state = torch.load(ground_cache / names[arch], weights_only=True)
        for key, value in model.state_dict().items():
            assert torch.equal(value, state[key]), key
        assert f"test accuracy {accuracy(model, test.x, test.y):.4f}" in printed
    assert sorted(os.listdir(agent_cache)) == sorted(names.values())

    # Without its file, the agent's error names the file and says how to get it.
    (agent_cache / names["tiny"]).unlink()
    with pytest.raises(ConfigError) as missing:
        preinstalled_student(cfg, fed, "tiny")
    message = str(missing.value)
    assert f"no pre-installed 'tiny' student for this run config in {agent_cache}" in message
    assert f"(expected file {names['tiny']})" in message
    assert "skydistill preinstall --run-config" in message
    assert "SKYDISTILL_CACHE" in message and "client-init='scratch'" in message
    assert "ServerApp" not in message
    (agent_cache / names["tiny"]).write_bytes(b"truncated")
    with pytest.raises(ConfigError, match="'tiny' student .* is unreadable"):
        preinstalled_student(cfg, fed, "tiny")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("num-rounds = 10\nseed = ", "is not valid TOML"),
        ("num-round = 10\n", "unknown run-config keys: num-round"),
        ('num-rounds = "ten"\n', "num-rounds"),
        ("num-clients = 0\n", "num-clients must be at least 1"),
        ("[tool.flwr.app.config]\nseed = 1\n", "has tables (tool)"),
    ],
)
def test_a_bad_run_config_exits_2_with_a_clear_message(
    toml: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(toml)
    out = tmp_path / "out"
    rc = _main(["preinstall", "--run-config", str(run_toml), "--out", str(out)], monkeypatch)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"skydistill: error: run config {run_toml}")
    assert expected in err
    assert "Traceback" not in err
    assert not out.exists()


def test_a_missing_run_config_or_data_folder_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "run.toml"
    assert _main(["preinstall", "--run-config", str(missing)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"cannot read the run config {missing} (No such file or directory)" in err

    missing.write_text(RUN_TOML)  # data-dir is the agents' path, absent here
    assert _main(["preinstall", "--run-config", str(missing)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "Dataset not found in /nonexistent/public/eurosat-rgb" in err
    assert "--data-dir" in err


def test_a_run_without_preinstalled_students_builds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_toml = tmp_path / "run.toml"
    out = tmp_path / "out"
    for line, why in (
        ('client-init = "scratch"', "agents start from a fresh student"),
        ('method = "fedavg"', "the server sends the weights"),
    ):
        run_toml.write_text(f'data-dir = "/nonexistent"\n{line}\n')
        args = _parser().parse_args(
            ["preinstall", "--run-config", str(run_toml), "--out", str(out)]
        )
        assert args.func(args) == 0  # no data read, nothing trained
        assert why in capsys.readouterr().out
        assert not out.exists()
    assert agent_archs(RunConfig(roles="satellite,satellite")) == {"satellite": "tiny"}


def test_data_dir_replaces_the_run_configs_own(tmp_path: Path) -> None:
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(RUN_TOML)
    assert preinstall_cli.read_run_config(run_toml).data_dir == "/nonexistent/public"
    cfg = preinstall_cli.read_run_config(run_toml, "/ground/public")
    assert (cfg.data_dir, cfg.seed, cfg.num_clients) == ("/ground/public", 1907, 3)
    assert preinstall_cli.read_run_config(run_toml, "").data_dir == "/nonexistent/public"


def _entry(cfg: RunConfig, fed: Federation, arch: str) -> tuple[str, Federation, dict[str, Any]]:
    name, recipe = cache_entry(cfg, fed, arch)
    return name, fed, recipe
