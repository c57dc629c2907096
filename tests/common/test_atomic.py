from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from common.atomic import atomic_write


def test_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    atomic_write(path, lambda fh: fh.write(b"old"))
    atomic_write(path, lambda fh: fh.write(b"new"))
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    atomic_write(path, lambda fh: fh.write(b"old"))

    def boom(fh: BinaryIO) -> None:
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_new_file_is_readable_by_others_and_a_replaced_one_keeps_its_mode(
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.json"
    atomic_write(path, lambda fh: fh.write(b"one"))
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    atomic_write(path, lambda fh: fh.write(b"two"))
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.read_bytes() == b"two"
