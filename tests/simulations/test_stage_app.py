"""stage_app: the Flower App copied without its ignored folders builds the same FAB."""

from __future__ import annotations

from pathlib import Path

from flwr.cli.build import build_fab_from_disk

from common.settings import PROJECT_ROOT
from simulations.flower import stage_app


def _app(root: Path) -> Path:
    """A small Flower App with what a checkout holds beside its code."""
    root.mkdir()
    (root / "pyproject.toml").write_text((PROJECT_ROOT / "pyproject.toml").read_text())
    (root / ".gitignore").write_text(".venv/\nruns/\nbench/out/*/\n*.pyc\n")
    (root / "server").mkdir()
    (root / "server" / "app.py").write_text("app = None\n")
    (root / "server" / "app.pyc").write_bytes(b"\0")
    (root / "bench" / "out" / "run-1").mkdir(parents=True)
    (root / "bench" / "out" / "robust.json").write_text("{}\n")
    (root / "bench" / "out" / "run-1" / "report.json").write_text("{}\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "big.py").write_text("x = 1\n")
    (root / "runs" / "r1").mkdir(parents=True)
    (root / "runs" / "r1" / "run-config.toml").write_text("seed = 1\n")
    (root / ".git" / "objects").mkdir(parents=True)  # what a checkout's .git holds
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "objects" / "ab12").write_bytes(b"\0")
    (root / "linked.py").symlink_to(root / "server" / "app.py")
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_the_staged_copy_leaves_out_ignored_folders_and_builds_the_same_fab(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path / "app")
    staged = stage_app(app, tmp_path / "staged" / "app")
    assert _files(staged) == {
        ".gitignore",
        "pyproject.toml",
        "server/app.py",
        "bench/out/robust.json",
    }
    assert build_fab_from_disk(staged) == build_fab_from_disk(app)


def test_a_staging_folder_inside_the_app_is_not_copied_into_itself(tmp_path: Path) -> None:
    app = _app(tmp_path / "app")
    outside = build_fab_from_disk(stage_app(app, tmp_path / "outside" / "app"))
    staged = stage_app(app, app / "kept" / "staging" / "app")  # a folder .gitignore keeps
    assert "kept" not in {p.name for p in staged.iterdir()}
    assert build_fab_from_disk(staged) == outside
