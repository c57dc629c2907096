"""The ServerApp logs each line once on stderr, and its own lines in out-dir/server.log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.logs import SERVER_LOG, configure_logging, server_log


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """Undo configure_logging's changes to the root logger after the test."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("root_handlers")
def test_flower_records_are_left_to_flowers_own_handler() -> None:
    configure_logging()
    configure_logging()  # a second call adds nothing
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_skydistill", False)]
    assert len(ours) == 1
    stream = io.StringIO()
    handler = ours[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("flwr").info("[ROUND 1/2]")  # Flower prints this itself
    logging.getLogger("server.strategy").info("round 1: 3 clients selected")
    logging.getLogger("py.warnings").warning("a library warning")
    text = stream.getvalue()
    assert "[ROUND 1/2]" not in text
    assert text.count("round 1: 3 clients selected") == 1
    assert "a library warning" in text


def test_server_log_holds_skydistill_lines_in_plain_text(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with server_log(out) as path:
        assert path == out / SERVER_LOG
        logging.getLogger("server.history").warning("round %d: accuracy %.4f", 1, 0.5)
        logging.getLogger("common.model_cache").info("teacher: found in the cache")
        logging.getLogger("server.history").debug("not at INFO")
        logging.getLogger("flwr").warning("Flower's own line")
    logging.getLogger("server.history").warning("after the run")
    lines = (out / SERVER_LOG).read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("WARNING server.history: round 1: accuracy 0.5000")
    assert lines[1].endswith("INFO common.model_cache: teacher: found in the cache")
    assert all("\x1b" not in line for line in lines)
    with server_log(out):  # a resumed run appends
        logging.getLogger("server.app").info("resumed")
    assert len((out / SERVER_LOG).read_text().splitlines()) == 3


def test_no_out_dir_no_file() -> None:
    with server_log(None) as path:
        assert path is None


def test_an_unwritable_out_dir_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with server_log(blocker / "run") as path:  # a folder under a file cannot exist
        assert path is None
    assert "cannot write" in caplog.text
