"""An artefact's metadata is the student's own (common.student_file.StudentMeta) plus its
format, in the JSON that exported artefacts have always carried."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.dataset import BandStats
from common.errors import ConfigError
from common.student_file import StudentMeta, load_student
from onboard.artefact import TorchClassifier, load_classifier, meta_json, read_meta_json
from tests.student_fixture import TrainedStudent

META = StudentMeta(
    arch="tiny",
    role="drone",
    bands=("R", "G"),
    classes=("Forest",),
    stats=BandStats((0.5, 100.0), (2.0, 0.25)),
)
# What skydistill wrote into (and beside) every export before the metadata classes were one.
WRITTEN = """{
  "arch": "tiny",
  "role": "drone",
  "bands": [
    "R",
    "G"
  ],
  "classes": [
    "Forest"
  ],
  "mean": [
    0.5,
    100.0
  ],
  "std": [
    2.0,
    0.25
  ],
  "format": "onnx-int8",
  "tile_size": 64
}"""


def test_the_metadata_json_is_written_and_read_as_before() -> None:
    assert meta_json(META, "onnx-int8") == WRITTEN
    assert read_meta_json(WRITTEN, "m.onnx") == (META, "onnx-int8")
    # the oldest sidecars have neither format nor tile size
    oldest = WRITTEN.replace('  "format": "onnx-int8",\n  "tile_size": 64\n', '  "x": 0\n')
    assert read_meta_json(oldest, "m.ts") == (META, "torch")
    small_tiles = StudentMeta(**{**vars(META), "tile_size": 32})
    assert read_meta_json(meta_json(small_tiles, "onnx"), "m") == (small_tiles, "onnx")


@pytest.mark.parametrize(
    "text", ["not json", "[]", WRITTEN.replace('"arch"', '"name"'), WRITTEN.replace("0.5", '"a"')]
)
def test_unreadable_metadata_is_a_config_error_naming_the_file(text: str) -> None:
    with pytest.raises(ConfigError, match=r"model metadata in m\.onnx\.json is unreadable"):
        read_meta_json(text, "m.onnx.json")


def test_a_student_file_runs_as_a_torch_classifier_of_its_own_metadata(
    ms_student: TrainedStudent, tmp_path: Path
) -> None:
    student = load_student(ms_student.path)
    model = load_classifier(ms_student.path)
    assert isinstance(model, TorchClassifier) and model.format == "torch"
    assert model.meta == student.meta and not hasattr(model.meta, "state")
    not_a_model = tmp_path / "x.pt"
    not_a_model.write_text("hello")
    with pytest.raises(ConfigError, match="neither a skydistill student file"):
        load_classifier(not_a_model)
