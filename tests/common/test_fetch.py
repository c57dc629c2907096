"""``common.fetch`` against a real local HTTP server serving fixture zips."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import bands, fetch
from common.errors import FetchError
from common.rasters import load_folder
from tests.fetch_server import (
    PER_CLASS,
    Server,
    assert_fetched,
    checksums_of,
    closed_port_url,
    md5,
)


@pytest.fixture
def checksums(fixtures: Path) -> dict[str, str]:
    return checksums_of(fixtures)


def test_fetch_layout_manifest_and_rasters(
    tmp_path: Path,
    fixtures: Path,
    server: Server,
    checksums: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dest = tmp_path / "data"
    caplog.set_level("INFO", logger="common.fetch")
    paths = fetch.fetch_eurosat(dest, base_url=server.url, checksums=checksums, timeout=5)
    assert paths == {"rgb": dest / "eurosat-rgb", "ms": dest / "eurosat-ms"}
    assert_fetched(dest, fixtures)
    assert not (dest / "EuroSAT_RGB.zip").exists() and not (dest / "EuroSAT_MS.zip").exists()
    assert "100%" in caplog.text
    tiles = PER_CLASS * len(bands.CLASSES)
    assert fetch.tile_count(paths["rgb"]) == fetch.tile_count(paths["ms"]) == tiles

    ms = load_folder(dest / "eurosat-ms", bands.MS, use_cache=False)
    assert len(ms) == 20 and ms.images.shape[1] == 13 and ms.skipped == ()
    rgb = load_folder(dest / "eurosat-rgb", bands.RGB, use_cache=False)
    assert len(rgb) == 20 and rgb.images.shape[1] == 3

    # Second fetch is a no-op: nothing is requested (the URL is not even reachable).
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    caplog.clear()
    again = fetch.fetch_eurosat(dest, base_url=closed_port_url(), timeout=5)
    assert again == paths
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    assert "already there" in caplog.text


def test_wrong_checksum_raises_and_leaves_nothing(
    tmp_path: Path, server: Server, checksums: dict[str, str]
) -> None:
    dest = tmp_path / "data"
    bad = {**checksums, "rgb": "0" * 32}
    with pytest.raises(FetchError) as err:
        fetch.fetch_eurosat(dest, base_url=server.url, which=("rgb",), checksums=bad, timeout=5)
    msg = str(err.value)
    assert "0" * 32 in msg and checksums["rgb"] in msg and "retry" in msg
    assert list(dest.iterdir()) == []


def test_zip_slip_member_is_refused(tmp_path: Path, fixtures: Path, server: Server) -> None:
    dest = tmp_path / "a" / "data"
    evil = fixtures / "served" / "evil" / "EuroSAT_RGB.zip"
    with pytest.raises(FetchError, match=r"unsafe member path '\.\./evil'"):
        fetch.fetch_eurosat(
            dest,
            base_url=server.url + "evil/",
            which=("rgb",),
            checksums={"rgb": md5(evil)},
            timeout=5,
        )
    assert not (tmp_path / "a" / "evil").exists() and not (dest.parent / "evil").exists()
    assert not (dest / "eurosat-rgb").exists()
    assert [p.name for p in dest.iterdir() if p.is_dir()] == []


def test_unreachable_url_gives_fetch_error(tmp_path: Path) -> None:
    base = closed_port_url()
    with pytest.raises(FetchError) as err:
        fetch.fetch_eurosat(tmp_path / "data", base_url=base, which=("ms",), timeout=5)
    msg = str(err.value)
    assert base + "EuroSAT_MS.zip" in msg and "download manually" in msg
    assert list((tmp_path / "data").iterdir()) == []


def test_missing_file_on_server_gives_fetch_error(tmp_path: Path, server: Server) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch.fetch_eurosat(
            tmp_path / "d", base_url=server.url + "nope/", which=("rgb",), timeout=5
        )


def test_unknown_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"unknown EuroSAT archive\(s\) \['sar'\]"):
        fetch.fetch_eurosat(tmp_path, base_url=closed_port_url(), which=("sar",))
