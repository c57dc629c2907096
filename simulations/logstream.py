"""Turn ``flwr log --stream`` output into ``run.log``: plain text, one line per event.

Flower colours its level names with ANSI escapes and prints advice meant for people who size
federations with ``flwr federation``; skydistill sets the federation size itself
(``num-supernodes`` = ``num-clients``), so that advice is dropped, as are a Ray tip about GPU
environment variables (this is a CPU build), the warning Flower logs when it stops the client
actors at the end of every run, and Flower's empty spacer lines.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from common.errors import SkydistillError

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Lines that are advice for someone else, with the reason each does not apply.
IRRELEVANT = (
    # skydistill always passes num-supernodes (= num-clients): Flower's default does not matter
    re.compile(r"default simulated SuperNodes changed"),
    # skydistill sizes the federation per run with --federation-config, not `flwr federation`
    re.compile(r"To change federation size, use the following command"),
    re.compile(r"^\s*flwr federation \S+"),
    # Flower stopping Ray's actors after the last round, logged as a WARNING at every normal end
    re.compile(r"Manually terminating ClientAppActor"),
    # CPU build, num_gpus=0: Ray's future change of accelerator variables changes nothing
    re.compile(r"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"),
)
FLOWER_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
# Python prints the source line of a warning after it; drop it with the warning.
WARNING_SOURCE = re.compile(r"^\s+warnings\.warn\(")


def clean_line(line: str) -> str:
    """``line`` without colour codes, carriage returns or trailing blanks."""
    return ANSI.sub("", line).replace("\r", "").rstrip()


def is_irrelevant(line: str) -> bool:
    """Advice that does not apply, or one of Flower's empty ``INFO :`` spacer lines."""
    level, message = _split(line)
    if level and not message:
        return True
    return any(p.search(message) for p in IRRELEVANT)


def _split(line: str) -> tuple[str, str]:
    """(level, message) of a Flower line ``LEVEL :   message``; ("", line) for other lines."""
    head, sep, tail = line.partition(":")
    if sep and head.strip() in FLOWER_LEVELS:
        return head.strip(), tail.strip()
    return "", line


def clean_lines(lines: Iterable[str]) -> Iterable[str]:
    """Plain, relevant lines of a Flower log stream, in order."""
    dropped = False
    for raw in lines:
        line = clean_line(raw)
        if is_irrelevant(line) or (dropped and WARNING_SOURCE.match(line)):
            dropped = True
            continue
        dropped = False
        yield line


def pump(source: IO[bytes], path: Path) -> threading.Thread:
    """Copy cleaned lines from ``source`` (a pipe) to ``path`` (appended) in a thread, which
    ends when the pipe closes."""

    def run() -> None:
        with source, path.open("a", encoding="utf-8") as out:
            text = (raw.decode("utf-8", errors="replace") for raw in source)
            for line in clean_lines(text):
                out.write(line + "\n")
                out.flush()

    thread = threading.Thread(target=run, name="flwr-log-pump", daemon=True)
    thread.start()
    return thread


class LogStream:
    """A log-following command (``flwr log RUN --stream``), its output cleaned into a file."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(env)
        )
        if self.proc.stdout is None:  # cannot happen with stdout=PIPE; keeps mypy informed
            raise SkydistillError(f"{cmd[0]} started without an output pipe")
        self._pump = pump(self.proc.stdout, path)

    def ended(self) -> bool:
        """Whether the command has exited: ``flwr log --stream`` does once the run it follows
        has finished and its last lines are out (or when it failed)."""
        return self.proc.poll() is not None

    def terminate(self, grace: float = 3.0) -> None:
        """Stop following: ``flwr log`` ends by itself once a finished run's logs are all
        out, so give it ``grace`` seconds for the last lines, then SIGTERM it."""
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(timeout=5.0)
