"""``skydistill data ...``: the data command group. ``data fetch eurosat --to DIR`` downloads,
verifies and unpacks the public EuroSAT zips (``common.fetch``); ``data scene`` is added by
``cli/onboard.py``."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from common.fetch import DEFAULT_BASE_URL, SOURCES, fetch_eurosat, tile_count

log = logging.getLogger(__name__)


def _key_md5(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    value = value.strip().lower()
    if not sep or key not in SOURCES or not re.fullmatch(r"[0-9a-f]{32}", value):
        raise argparse.ArgumentTypeError(
            f"expected KEY=MD5 with KEY in {sorted(SOURCES)} and 32 hex digits, got {text!r}"
        )
    return key, value


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Register ``data fetch eurosat --to DIR [--only rgb|ms] [--keep-archive] [--md5 K=HEX]``;
    return the ``data`` sub-commands so that other modules can add theirs."""
    data = subparsers.add_parser("data", help="manage datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("fetch", help="download, verify and unpack a public dataset")
    p.add_argument("name", choices=["eurosat"], help="dataset to fetch")
    p.add_argument("--to", required=True, type=Path, metavar="DIR", help="data root to fill")
    p.add_argument(
        "--base-url",
        default=DEFAULT_BASE_URL,
        metavar="URL",
        help="where the zips live (default: Zenodo record 7711810)",
    )
    p.add_argument("--only", choices=sorted(SOURCES), help="fetch only this archive")
    p.add_argument("--keep-archive", action="store_true", help="keep the zip after unpacking")
    p.add_argument(
        "--md5",
        action="append",
        type=_key_md5,
        default=[],
        metavar="KEY=HEX",
        help="expected md5 of an archive, overriding the published one (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    p.set_defaults(func=run_fetch)
    return data_sub


def run_fetch(args: argparse.Namespace) -> int:
    """Run the fetch from parsed CLI arguments and log how many tiles each folder holds."""
    which = (args.only,) if args.only else tuple(SOURCES)
    paths = fetch_eurosat(
        args.to,
        base_url=args.base_url,
        which=which,
        checksums=dict(args.md5),
        timeout=args.timeout,
        keep_archive=args.keep_archive,
    )
    for key, folder in paths.items():
        log.info("%s: %d tiles in %s", key, tile_count(folder), folder)
    return 0
