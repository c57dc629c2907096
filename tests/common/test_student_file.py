from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from common.bands import RGB
from common.dataset import BandStats
from common.errors import ConfigError
from common.models import build_model
from common.student_file import StudentMeta, is_torchscript, load_student, save_student


def test_a_student_file_alone_rebuilds_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", 3, 10)
    stats = BandStats((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    path = save_student(
        tmp_path / "s" / "satellite-00003.pt",
        model,
        arch="tiny",
        role="satellite",
        bands=RGB.band_names,
        classes=RGB.classes,
        stats=stats,
    )
    loaded = load_student(path)
    assert (loaded.arch, loaded.role, loaded.stats) == ("tiny", "satellite", stats)
    assert loaded.bands == RGB.band_names and loaded.classes == RGB.classes
    assert loaded.meta == StudentMeta(
        arch="tiny", role="satellite", bands=RGB.band_names, classes=RGB.classes, stats=stats
    )
    assert type(loaded.meta) is StudentMeta and loaded.tile_size == 64
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(loaded.build()(x), model(x))


def test_a_file_that_is_not_a_student_is_refused_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="bad.pt"):
        load_student(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ConfigError, match="keys weights"):
        load_student(other)
    newer = tmp_path / "newer.pt"
    torch.save({"format_version": 99}, newer)
    with pytest.raises(ConfigError, match="format version 99; this skydistill reads format"):
        load_student(newer)


def _student_blob(tmp_path: Path) -> Path:
    return save_student(
        tmp_path / "good.pt",
        build_model("tiny", 3, 10),
        arch="tiny",
        role="drone",
        bands=RGB.band_names,
        classes=RGB.classes,
        stats=BandStats((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    )


def _write_case(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.pt"
    if case == "text":
        path.write_text("arch: tiny\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "state-dict":
        torch.save(build_model("tiny", 3, 10).state_dict(), path)
    elif case == "tensor":
        torch.save(torch.zeros(3), path)
    elif case == "pickled-model":
        torch.save(build_model("tiny", 3, 10), path)
    elif case == "truncated":
        whole = _student_blob(tmp_path).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif case == "torchscript":
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13
            warnings.simplefilter("ignore", DeprecationWarning)
            model = build_model("tiny", 3, 10).eval()
            torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 64, 64)), str(path))
    return path


@pytest.mark.parametrize(
    ("case", "what"),
    [
        ("text", "not a torch archive"),
        ("empty", "an empty file"),
        ("state-dict", "it holds a dict with keys"),
        ("tensor", "it holds a Tensor, not a dict"),
        ("pickled-model", "it holds Python objects other than tensors"),
        ("truncated", "a truncated or corrupt zip archive"),
        ("torchscript", "it is a TorchScript export"),
    ],
)
def test_what_a_non_student_file_is_not_is_said_without_unsafe_advice(
    tmp_path: Path, case: str, what: str
) -> None:
    path = _write_case(tmp_path, case)
    with pytest.raises(ConfigError) as info:
        load_student(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a skydistill student file: {what}")
    assert "expected a .pt written by skydistill" in message and "state_dict" in message
    assert "weights_only" not in message and "trust" not in message


def test_a_dict_missing_student_keys_names_them(tmp_path: Path) -> None:
    path = tmp_path / "partial.pt"
    torch.save({"format_version": 1, "arch": "tiny"}, path)
    with pytest.raises(ConfigError, match="keys format_version, arch; missing role, bands"):
        load_student(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_student(tmp_path / "absent.pt")


def test_metadata_values_are_parsed_or_refused() -> None:
    meta = StudentMeta.parse(
        arch="tiny", role="drone", bands=["R"], classes=("a", "b"), mean=[1], std=["2.5"]
    )
    assert meta == StudentMeta(
        arch="tiny", role="drone", bands=("R",), classes=("a", "b"),
        stats=BandStats((1.0,), (2.5,)),
    )  # fmt: skip
    with pytest.raises(TypeError):
        StudentMeta.parse(arch="tiny", role="d", bands=3, classes=(), mean=[], std=[])
    with pytest.raises(ValueError):
        StudentMeta.parse(arch="tiny", role="d", bands=(), classes=(), mean=["x"], std=[])


def test_a_wrongly_typed_value_in_a_student_file_is_refused(tmp_path: Path) -> None:
    path = _student_blob(tmp_path)
    blob = torch.load(path, weights_only=True)
    torch.save({**blob, "norm_mean": 0.5}, path)
    with pytest.raises(ConfigError, match="a value has the wrong type"):
        load_student(path)


def test_torchscript_archives_are_told_apart_from_student_files(tmp_path: Path) -> None:
    assert is_torchscript(_write_case(tmp_path, "torchscript"))
    assert not is_torchscript(_student_blob(tmp_path))
    assert not is_torchscript(_write_case(tmp_path, "text"))
