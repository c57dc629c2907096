"""`skydistill data fetch eurosat` against a real local HTTP server serving fixture zips."""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import importlib
import importlib.util
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from common import bands, fetch
from common.errors import FetchError
from common.rasters import load_folder
from tests.data.eurosat.make import make

PER_CLASS = 2


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _zip_folder(
    folder: Path, archive: Path, top: str, extra: dict[str, bytes] | None = None
) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", b"")
        for path in sorted(folder.glob("*/*")):
            zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)


def _rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh))


class _Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        log = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.append(self.path)

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated EuroSAT-like folders (2 tiles/class) and their zips in the upstream layout."""
    root = make(tmp_path_factory.mktemp("fixtures"), per_class=PER_CLASS, seed=0)
    served = root / "served"
    served.mkdir()
    # macOS resource forks sit in class-named folders too; they must be ignored.
    junk = {"__MACOSX/EuroSAT_RGB/Forest/._Forest_1.jpg": b"not a jpeg"}
    _zip_folder(root / "eurosat-rgb", served / "EuroSAT_RGB.zip", "EuroSAT_RGB", junk)
    _zip_folder(root / "eurosat-ms", served / "EuroSAT_MS.zip", "EuroSAT_MS")
    (served / "evil").mkdir()
    with zipfile.ZipFile(served / "evil" / "EuroSAT_RGB.zip", "w") as zf:
        zf.writestr("EuroSAT_RGB/Forest/Forest_1.jpg", b"x")
        zf.writestr("../evil", b"pwned")
    return root


@pytest.fixture
def server(fixtures: Path) -> Iterator[_Server]:
    srv = _Server(fixtures / "served")
    yield srv
    srv.close()


@pytest.fixture
def checksums(fixtures: Path) -> dict[str, str]:
    served = fixtures / "served"
    return {"rgb": _md5(served / "EuroSAT_RGB.zip"), "ms": _md5(served / "EuroSAT_MS.zip")}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _assert_fetched(dest: Path, fixtures: Path) -> None:
    for spec in (bands.RGB, bands.MS):
        folder = dest / spec.folder
        files = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*"))
        assert len(files) == PER_CLASS * len(bands.CLASSES)
        assert all(f.endswith(spec.suffix) for f in files)
        assert "AnnualCrop/AnnualCrop_1" + spec.suffix in files
        rows = _rows(folder / "manifest.csv")
        assert [r["path"] for r in rows] == files  # sorted by path, one row per tile
        for row in rows:
            assert row["class"] == row["path"].split("/")[0]
            assert row["sha256"] == hashlib.sha256((folder / row["path"]).read_bytes()).hexdigest()
        # Unpacked bytes are identical to the generated fixtures.
        assert rows == _rows(fixtures / spec.folder / "manifest.csv")
    leftovers = [p.name for p in dest.iterdir() if p.name.startswith(".") or p.suffix == ".part"]
    assert leftovers == []


def test_fetch_layout_manifest_and_rasters(
    tmp_path: Path,
    fixtures: Path,
    server: _Server,
    checksums: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dest = tmp_path / "data"
    caplog.set_level("INFO", logger="common.fetch")
    paths = fetch.fetch_eurosat(dest, base_url=server.url, checksums=checksums, timeout=5)
    assert paths == {"rgb": dest / "eurosat-rgb", "ms": dest / "eurosat-ms"}
    _assert_fetched(dest, fixtures)
    assert not (dest / "EuroSAT_RGB.zip").exists() and not (dest / "EuroSAT_MS.zip").exists()
    assert "100%" in caplog.text

    ms = load_folder(dest / "eurosat-ms", bands.MS, use_cache=False)
    assert len(ms) == 20 and ms.images.shape[1] == 13 and ms.skipped == ()
    rgb = load_folder(dest / "eurosat-rgb", bands.RGB, use_cache=False)
    assert len(rgb) == 20 and rgb.images.shape[1] == 3

    # Second fetch is a no-op: nothing is requested (the URL is not even reachable).
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    caplog.clear()
    again = fetch.fetch_eurosat(dest, base_url=_closed_port_url(), timeout=5)
    assert again == paths
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    assert "already there" in caplog.text


def test_wrong_checksum_raises_and_leaves_nothing(
    tmp_path: Path, server: _Server, checksums: dict[str, str]
) -> None:
    dest = tmp_path / "data"
    bad = {**checksums, "rgb": "0" * 32}
    with pytest.raises(FetchError) as err:
        fetch.fetch_eurosat(dest, base_url=server.url, which=("rgb",), checksums=bad, timeout=5)
    msg = str(err.value)
    assert "0" * 32 in msg and checksums["rgb"] in msg and "retry" in msg
    assert list(dest.iterdir()) == []


def test_zip_slip_member_is_refused(tmp_path: Path, fixtures: Path, server: _Server) -> None:
    dest = tmp_path / "a" / "data"
    evil = fixtures / "served" / "evil" / "EuroSAT_RGB.zip"
    with pytest.raises(FetchError, match=r"unsafe member path '\.\./evil'"):
        fetch.fetch_eurosat(
            dest,
            base_url=server.url + "evil/",
            which=("rgb",),
            checksums={"rgb": _md5(evil)},
            timeout=5,
        )
    assert not (tmp_path / "a" / "evil").exists() and not (dest.parent / "evil").exists()
    assert not (dest / "eurosat-rgb").exists()
    assert [p.name for p in dest.iterdir() if p.is_dir()] == []


def test_unreachable_url_gives_fetch_error(tmp_path: Path) -> None:
    base = _closed_port_url()
    with pytest.raises(FetchError) as err:
        fetch.fetch_eurosat(tmp_path / "data", base_url=base, which=("ms",), timeout=5)
    msg = str(err.value)
    assert base + "EuroSAT_MS.zip" in msg and "download manually" in msg
    assert list((tmp_path / "data").iterdir()) == []


def test_missing_file_on_server_gives_fetch_error(tmp_path: Path, server: _Server) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch.fetch_eurosat(
            tmp_path / "d", base_url=server.url + "nope/", which=("rgb",), timeout=5
        )


def _cli_args(dest: Path, url: str, checksums: dict[str, str]) -> list[str]:
    md5s = [a for k, v in checksums.items() for a in ("--md5", f"{k}={v}")]
    return ["data", "fetch", "eurosat", "--to", str(dest), "--base-url", url, *md5s]


def test_cli_parser_and_run_fetch(
    tmp_path: Path, fixtures: Path, server: _Server, checksums: dict[str, str]
) -> None:
    parser = argparse.ArgumentParser()
    fetch.add_parser(parser.add_subparsers(dest="command"))
    dest = tmp_path / "data"

    args = parser.parse_args(
        [*_cli_args(dest, server.url, checksums), "--only", "rgb", "--keep-archive"]
    )
    assert args.func(args) == 0
    assert (dest / "eurosat-rgb" / "manifest.csv").is_file() and not (dest / "eurosat-ms").exists()
    assert (dest / "EuroSAT_RGB.zip").is_file()

    args = parser.parse_args(_cli_args(dest, server.url, checksums))
    assert args.func(args) == 0
    _assert_fetched(dest, fixtures)
    assert not (dest / "EuroSAT_MS.zip").exists()

    with pytest.raises(SystemExit):
        parser.parse_args([*_cli_args(dest, server.url, {}), "--md5", "rgb=nothex"])


def test_through_main_cli(
    tmp_path: Path, fixtures: Path, server: _Server, checksums: dict[str, str]
) -> None:
    if importlib.util.find_spec("cli.main") is None:
        pytest.skip("cli/main.py does not exist yet")
    cli = importlib.import_module("cli.main")
    dest = tmp_path / "data"
    assert cli.main(_cli_args(dest, server.url, checksums)) == 0
    _assert_fetched(dest, fixtures)
