"""Download, verify and unpack the public EuroSAT zips (``skydistill data fetch eurosat``).

Writes ``DIR/eurosat-rgb/<Class>/<Class>_<n>.jpg`` and ``DIR/eurosat-ms/<Class>/<Class>_<n>.tif``,
each with ``manifest.csv`` (``path,class,sha256``), which is the layout ``common.rasters`` reads.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from common.bands import CLASSES, MS, RGB
from common.errors import FetchError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://zenodo.org/records/7711810/files/"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One downloadable archive and where its tiles go under the data root."""

    key: str
    filename: str
    md5: str | None
    folder: str
    suffix: str


# MD5s of the Zenodo record 7711810 files as Zenodo lists them (RGB: 94,658,721 bytes, MS:
# 2,065,402,329 bytes). They are NOT torchgeo's values: torchgeo's EuroSAT md5s belong to other
# archives (DFKI/Hugging Face "EuroSATallBands.zip", torchvision's "EuroSAT.zip").
SOURCES: dict[str, Source] = {
    "rgb": Source("rgb", "EuroSAT_RGB.zip", "f46e308c4d50d4bf32fedad2d3d62f3b", RGB.folder, ".jpg"),
    "ms": Source("ms", "EuroSAT_MS.zip", "091174add3c8e680a49244acf185b9f0", MS.folder, ".tif"),
}


def _md5_of(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, target: Path, timeout: float, hint: str) -> str:
    """Stream ``url`` to ``target`` via ``target.part``; return the md5 of the bytes."""
    part = target.with_name(target.name + ".part")
    h = hashlib.md5()
    done = False
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "skydistill-fetch/0.1"})
        with urllib.request.urlopen(req, timeout=timeout) as resp, part.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            got, next_pct = 0, 10
            log.info(
                "downloading %s (%s)", url, f"{total / 1e6:.1f} MB" if total else "size unknown"
            )
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                h.update(chunk)
                got += len(chunk)
                while total and got * 100 >= next_pct * total and next_pct <= 100:
                    log.info(
                        "%s: %d%% (%.1f of %.1f MB)", target.name, next_pct, got / 1e6, total / 1e6
                    )
                    next_pct += 10
        if total and got != total:
            raise FetchError(f"{url}: download truncated ({got} of {total} bytes); {hint}")
        os.replace(part, target)
        done = True
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        raise FetchError(f"cannot download {url} ({exc}): {hint}") from exc
    finally:
        if not done:
            part.unlink(missing_ok=True)
    return h.hexdigest()


def _safe_members(zf: zipfile.ZipFile, source: Source) -> list[tuple[zipfile.ZipInfo, str, str]]:
    """(member, class, file name) of every tile; refuses the archive if any name is unsafe."""
    tiles: dict[str, tuple[zipfile.ZipInfo, str, str]] = {}
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise FetchError(f"refusing to unpack {source.filename}: unsafe member path {name!r}")
        if info.is_dir() or len(parts) < 2 or "__MACOSX" in parts or parts[-1].startswith("._"):
            continue
        cls, fname = parts[-2], parts[-1]
        if cls in CLASSES and fname.lower().endswith(source.suffix):
            if f"{cls}/{fname}" in tiles:
                log.warning("%s: duplicate %s/%s, keeping the first", source.filename, cls, fname)
                continue
            tiles[f"{cls}/{fname}"] = (info, cls, fname)
    return [tiles[k] for k in sorted(tiles)]


def _unpack(archive: Path, source: Source, target: Path) -> int:
    """Unpack the tiles into a temp dir next to ``target``, write the manifest, rename it in."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{source.folder}.", suffix=".tmp", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = _safe_members(zf, source)
                if not members:
                    raise FetchError(
                        f"{archive.name} holds no <Class>/*{source.suffix} tiles of the classes "
                        f"{', '.join(CLASSES)}: is it the right archive?"
                    )
                rows: list[tuple[str, str, str]] = []
                for info, cls, fname in members:
                    (tmp / cls).mkdir(exist_ok=True)
                    h = hashlib.sha256()
                    with zf.open(info) as src, (tmp / cls / fname).open("wb") as dst:
                        while chunk := src.read(_CHUNK):
                            dst.write(chunk)
                            h.update(chunk)
                    rows.append((f"{cls}/{fname}", cls, h.hexdigest()))
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise FetchError(f"{archive} is not a readable zip archive ({exc})") from exc
        with (tmp / "manifest.csv").open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["path", "class", "sha256"])
            writer.writerows(sorted(rows))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return len(rows)


def fetch_eurosat(
    dest: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    which: Sequence[str] = ("rgb", "ms"),
    checksums: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    keep_archive: bool = False,
) -> dict[str, Path]:
    """Download, verify, unpack; returns {"rgb": dest/"eurosat-rgb", ...}.

    ``checksums`` maps a key ("rgb"/"ms") to an md5 (hex) that overrides the published one.
    A folder that already holds ``manifest.csv`` is left alone (no download).
    """
    unknown = [k for k in which if k not in SOURCES]
    if unknown:
        raise FetchError(f"unknown EuroSAT archive(s) {unknown}: choose from {sorted(SOURCES)}")
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for key in which:
        source = SOURCES[key]
        target = dest / source.folder
        out[key] = target
        if (target / "manifest.csv").is_file():
            log.info("%s is already there (has manifest.csv); skipping %s", target, source.filename)
            continue
        if target.exists():
            raise FetchError(
                f"{target} exists but has no manifest.csv (an earlier manual unpack?): move or "
                f"delete it, then run the fetch again"
            )
        url = base_url.rstrip("/") + "/" + source.filename
        hint = (
            f"check your connection or download manually from {url} and unpack it to {target} "
            f"(<Class>/<file>{source.suffix})"
        )
        expected = ((checksums or {}).get(key) or source.md5 or "").strip().lower() or None
        archive = dest / source.filename
        got = _md5_of(archive) if archive.is_file() else None
        if got is not None and expected is not None and got != expected:
            log.warning(
                "%s exists but its md5 is %s, not %s; downloading again", archive, got, expected
            )
            got = None
        if got is None:
            got = _download(url, archive, timeout, hint)
        else:
            log.info("using the archive already at %s", archive)
        if expected is None:
            log.warning("no published checksum for %s; its md5 is %s (not verified)", url, got)
        elif got != expected:
            archive.unlink(missing_ok=True)
            raise FetchError(
                f"{source.filename}: md5 mismatch, expected {expected}, got {got}. The download "
                f"was corrupt or changed upstream; it has been deleted: retry, or {hint}"
            )
        count = _unpack(archive, source, target)
        log.info("unpacked %d %s tiles into %s", count, source.suffix, target)
        if not keep_archive:
            archive.unlink(missing_ok=True)
    return out


def tile_count(folder: Path) -> int:
    """How many tiles the ``manifest.csv`` of a fetched folder lists."""
    with (folder / "manifest.csv").open(newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))
