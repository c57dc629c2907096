"""The ServerApp's logging: each skydistill line once on stderr, and in ``OUT/server.log``.

Flower's ``flwr`` logger prints its records with its own handler; the root handler here leaves
them out, or every Flower line would appear twice in what ``flwr log`` streams. ``server.log``
is the ServerApp's own file (plain text, appended across resumptions), so it never shares a
writer with ``run.log``, which ``skydistill simulate`` fills from ``flwr log``; a run started
with ``flwr run .`` has ``server.log`` only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

SERVER_LOG = "server.log"
PACKAGES = ("server", "common", "clients", "simulations", "onboard")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("httpx", "httpcore")  # one line per HTTP request to the SuperLink

log = logging.getLogger(__name__)


class NotFlower(logging.Filter):
    """Pass every record except Flower's, which Flower's own handler prints already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "flwr" or record.name.startswith("flwr."))


def configure_logging() -> None:
    """INFO and above on stderr, once per process, without repeating Flower's records."""
    root = logging.getLogger()
    if not any(getattr(h, "_skydistill", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(NotFlower())
        handler._skydistill = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def server_log(out_dir: Path | None) -> Iterator[Path | None]:
    """While the block runs, append skydistill's log lines to ``out_dir/server.log``."""
    if out_dir is None:
        yield None
        return
    path = out_dir / SERVER_LOG
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        log.error("cannot write %s (%s): the run goes on, logging to stderr only", path, exc)
        yield None
        return
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    loggers = [logging.getLogger(name) for name in PACKAGES]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > logging.INFO:  # INFO reaches the file in any case
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
