"""Exports agree with the student they came from, carry their metadata, and int8 stays close."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from cli.main import main
from common.bands import MS
from common.errors import ConfigError
from common.student_file import load_student
from onboard.artefact import (
    OnnxClassifier,
    TorchClassifier,
    load_classifier,
    normalised,
    sidecar,
)
from onboard.export import export_onnx, export_torchscript, verify
from onboard.tiles import config_for, onboard_tiles
from tests.student_fixture import TrainedStudent


def test_torchscript_and_onnx_match_torch_on_random_input(
    ms_student: TrainedStudent, tmp_path: Path
) -> None:
    student = load_student(ms_student.path)
    original = load_classifier(ms_student.path)
    ts = load_classifier(export_torchscript(student, tmp_path / "m.ts"))
    ox = load_classifier(export_onnx(student, tmp_path / "m.onnx"))
    assert isinstance(ts, TorchClassifier) and isinstance(ox, OnnxClassifier)
    rng = np.random.default_rng(0)
    raw = rng.uniform(1, 4000, size=(7, MS.num_bands, 64, 64)).astype(np.uint16)
    want = original.logits(raw)
    np.testing.assert_allclose(ts.logits(raw), want, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ox.logits(raw), want, atol=1e-4, rtol=1e-4)
    assert original.format == "torch" and original.meta == student.meta
    for exported, fmt in ((ts, "torchscript"), (ox, "onnx")):
        assert exported.format == fmt
        assert exported.meta == student.meta  # arch, role, bands, classes, stats, tile size
        assert (exported.meta.arch, exported.meta.role) == ("tiny", "satellite")
    assert sidecar(tmp_path / "m.onnx").is_file() and sidecar(tmp_path / "m.ts").is_file()


def test_embedded_metadata_is_enough_without_the_sidecar(
    ms_student: TrainedStudent, tmp_path: Path
) -> None:
    student = load_student(ms_student.path)
    for path in (tmp_path / "m.ts", tmp_path / "m.onnx"):
        (export_torchscript if path.suffix == ".ts" else export_onnx)(student, path)
        sidecar(path).unlink()
        assert load_classifier(path).meta.bands == MS.band_names


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter
def test_onnx_without_metadata_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "bare.onnx"
    torch.onnx.export(
        torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(path), dynamo=False, opset_version=17
    )
    assert onnx.load(str(path)).metadata_props is not None
    with pytest.raises(ConfigError, match="skydistill export"):
        load_classifier(path)


def test_int8_onnx_agrees_with_the_student_on_fixture_data(
    ms_student: TrainedStudent, fixture_data: Path, tmp_path: Path
) -> None:
    student = load_student(ms_student.path)
    tiles = onboard_tiles(config_for(student.bands, str(fixture_data)), 64, None)
    fp32 = export_onnx(student, tmp_path / "fp32.onnx")
    int8 = export_onnx(student, tmp_path / "int8.onnx", int8=True, calibration=tiles.calibration)
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    model = load_classifier(int8)
    assert model.format == "onnx-int8"
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # all fixture tiles: reference, test and the rest
    arrays = np.concatenate([tiles.calibration, tiles.test_x])
    labels = np.concatenate([np.full(len(tiles.calibration), -1), tiles.test_y])
    check = verify(load_classifier(ms_student.path), model, arrays, labels)
    assert check.agreement >= 0.9, check
    assert 0 < check.max_abs_logit_diff < 5.0  # quantised: close, but not identical


def test_torchscript_int8_is_refused_with_advice(
    ms_student: TrainedStudent, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="--format onnx --int8"):
        export_torchscript(load_student(ms_student.path), tmp_path / "m.ts", int8=True)


def test_export_cli_checks_the_export_on_the_test_split(
    ms_student: TrainedStudent,
    fixture_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sat.onnx"
    argv = ["export", "--student", str(ms_student.path), "--format", "onnx", "--int8"]
    code = main([*argv, "--out", str(out), "--data-dir", str(fixture_data)])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file() and sidecar(out).is_file()
    assert "exported onnx-int8 satellite (tiny)" in printed
    assert "top-1 agreement" in printed and "accuracy" in printed
    raw = np.full((1, MS.num_bands, 64, 64), 1000, np.uint16)
    assert normalised(load_classifier(out).meta.stats, raw).dtype == np.float32


@pytest.mark.parametrize("content", ["text", "state-dict", "truncated"])
def test_export_of_a_file_that_is_not_a_student_exits_2_and_says_what_it_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "model.pt"
    if content == "text":
        path.write_text("not a model\n")
    else:
        torch.save({"conv.weight": torch.zeros(4, 3, 3, 3)}, path)
        if content == "truncated":
            path.write_bytes(path.read_bytes()[:200])
    argv = ["export", "--student", str(path), "--format", "onnx", "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"skydistill: error: {path} is not a skydistill student file" in err
    assert "expected a .pt written by skydistill" in err
    assert "weights_only" not in err and "Traceback" not in err
