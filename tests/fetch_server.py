"""Fixture archives in the upstream EuroSAT layout, served by a real local HTTP server, for
the tests of ``common.fetch`` and of ``skydistill data fetch``."""

from __future__ import annotations

import csv
import functools
import hashlib
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from common import bands
from tests.data.eurosat.make import make

PER_CLASS = 2


def md5(path: Path) -> str:
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


def rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh))


def make_archives(root: Path) -> Path:
    """Generated EuroSAT-like folders (2 tiles/class) in ``root`` and their zips in the
    upstream layout in ``root/served`` (an unsafe one in ``served/evil``); returns ``root``."""
    root = make(root, per_class=PER_CLASS, seed=0)
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


def checksums_of(root: Path) -> dict[str, str]:
    served = root / "served"
    return {"rgb": md5(served / "EuroSAT_RGB.zip"), "ms": md5(served / "EuroSAT_MS.zip")}


class Server:
    """``root`` over HTTP on a free loopback port, in a thread; ``requests`` lists the paths."""

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


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def assert_fetched(dest: Path, fixtures: Path) -> None:
    for spec in (bands.RGB, bands.MS):
        folder = dest / spec.folder
        files = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*"))
        assert len(files) == PER_CLASS * len(bands.CLASSES)
        assert all(f.endswith(spec.suffix) for f in files)
        assert "AnnualCrop/AnnualCrop_1" + spec.suffix in files
        listed = rows(folder / "manifest.csv")
        assert [r["path"] for r in listed] == files  # sorted by path, one row per tile
        for row in listed:
            assert row["class"] == row["path"].split("/")[0]
            assert row["sha256"] == hashlib.sha256((folder / row["path"]).read_bytes()).hexdigest()
        # Unpacked bytes are identical to the generated fixtures.
        assert listed == rows(fixtures / spec.folder / "manifest.csv")
    leftovers = [p.name for p in dest.iterdir() if p.name.startswith(".") or p.suffix == ".part"]
    assert leftovers == []


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archives(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture
def server(fixtures: Path) -> Iterator[Server]:
    srv = Server(fixtures / "served")
    yield srv
    srv.close()
