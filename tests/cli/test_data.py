"""``skydistill data``: ``data fetch eurosat`` against a real local HTTP server serving fixture
zips, and the ``data scene`` command that cli/onboard.py adds to the group."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cli import data
from cli.main import build_parser, main
from common.bands import CLASSES
from tests.fetch_server import PER_CLASS, Server, assert_fetched, checksums_of


def _cli_args(dest: Path, url: str, checksums: dict[str, str]) -> list[str]:
    md5s = [a for k, v in checksums.items() for a in ("--md5", f"{k}={v}")]
    return ["data", "fetch", "eurosat", "--to", str(dest), "--base-url", url, *md5s]


def test_parser_and_run_fetch(
    tmp_path: Path, fixtures: Path, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    parser = argparse.ArgumentParser()
    data.add_parser(parser.add_subparsers(dest="command"))
    dest = tmp_path / "data"
    checksums = checksums_of(fixtures)
    caplog.set_level("INFO", logger="cli.data")

    args = parser.parse_args(
        [*_cli_args(dest, server.url, checksums), "--only", "rgb", "--keep-archive"]
    )
    assert args.func(args) == 0
    assert (dest / "eurosat-rgb" / "manifest.csv").is_file() and not (dest / "eurosat-ms").exists()
    assert (dest / "EuroSAT_RGB.zip").is_file()
    assert f"rgb: {PER_CLASS * len(CLASSES)} tiles in {dest / 'eurosat-rgb'}" in caplog.text
    assert "ms:" not in caplog.text

    args = parser.parse_args(_cli_args(dest, server.url, checksums))
    assert args.func(args) == 0
    assert_fetched(dest, fixtures)
    assert not (dest / "EuroSAT_MS.zip").exists()


@pytest.mark.parametrize(
    "md5", ["rgb=nothex", "sar=" + "0" * 32, "rgb", "rgb=" + "0" * 31], ids=str
)
def test_a_bad_md5_is_refused_by_the_parser(
    md5: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*_cli_args(tmp_path, "http://x/", {}), "--md5", md5])
    assert info.value.code == 2
    assert "expected KEY=MD5 with KEY in ['ms', 'rgb'] and 32 hex digits" in capsys.readouterr().err


def test_the_parser_keeps_the_published_defaults(tmp_path: Path) -> None:
    args = build_parser().parse_args(["data", "fetch", "eurosat", "--to", str(tmp_path)])
    assert args.base_url == "https://zenodo.org/records/7711810/files/"
    assert (args.only, args.keep_archive, args.md5, args.timeout) == (None, False, [], 60.0)
    assert args.func is data.run_fetch


def test_through_main(tmp_path: Path, fixtures: Path, server: Server) -> None:
    dest = tmp_path / "data"
    assert main(_cli_args(dest, server.url, checksums_of(fixtures))) == 0
    assert_fetched(dest, fixtures)


def test_the_data_group_has_fetch_and_scene() -> None:
    parser = build_parser()
    group = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = next(
        a for a in group.choices["data"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert sorted(sub.choices) == ["fetch", "scene"]
    args = parser.parse_args(["data", "scene", "--out", str(Path("scene.tif"))])
    assert args.func.__module__ == "cli.onboard"
