"""Write a file so that readers see the old version or the new one, never half of one."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

NEW_FILE_MODE = 0o644  # like a file written with open() under the usual umask 022


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write through ``write`` into a temp file beside ``path``, fsync it, then rename it.

    The file keeps the permissions of the one it replaces (a new one gets ``0644``, not the
    ``0600`` of a temp file: reports and cached models are read by other users and tools)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
