"""Which arithmetic the training loops use, and that bf16 autocast trains float32 weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from common import precision
from common.config import RunConfig
from common.models import build_model
from common.preinstalled import recipe
from common.teacher_recipe import teacher_key, teacher_recipe
from common.training import TrainSettings, accuracy, fit, predict_proba


@pytest.fixture
def cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A /proc/cpuinfo of our own, re-read by ``native_bf16``."""
    path = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", path)
    precision.native_bf16.cache_clear()
    yield path
    precision.native_bf16.cache_clear()


def test_auto_is_bf16_only_where_the_cpu_has_native_bf16(cpuinfo: Path) -> None:
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert precision.use_bf16("auto")
    precision.native_bf16.cache_clear()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not precision.use_bf16("auto")
    assert precision.use_bf16("bf16") and not precision.use_bf16("fp32")


def test_auto_is_fp32_where_the_cpu_flags_cannot_be_read(cpuinfo: Path) -> None:
    assert not cpuinfo.exists()
    assert not precision.use_bf16("auto")


def test_an_unknown_precision_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="precision.*auto.*bf16.*fp32"):
        RunConfig().with_values({"precision": "fp16"})


def test_bf16_autocast_trains_float32_weights_that_learn() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.randn(64, 3, 16, 16, generator=g) + 2.0 * y.view(-1, 1, 1, 1)  # separable
    model = build_model("tiny", 3, 2, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    settings = TrainSettings(epochs=8, batch_size=16, learning_rate=0.01, augment=False, bf16=True)
    fit(model, settings, x, y)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    probs = predict_proba(model, x)
    assert probs.dtype.name == "float32"
    assert float((probs.argmax(1) == y.numpy()).mean()) > 0.9


def test_the_precision_keys_every_cached_model() -> None:
    fp32, bf16 = (
        RunConfig().with_values({"precision": "fp32"}),
        RunConfig().with_values({"precision": "bf16"}),
    )
    assert teacher_recipe(fp32) != teacher_recipe(bf16)
    assert teacher_key(fp32) != teacher_key(bf16)
    assert recipe(fp32, "tiny") != recipe(bf16, "tiny")
    # fp32 keeps the keys it had before the setting existed (warm caches stay valid)
    full = fp32.with_values({"teacher-coarse-fraction": 0.0})
    assert teacher_key(full) == [full.teacher_epochs, full.learning_rate, full.batch_size, 42]
    assert "precision" not in recipe(fp32, "tiny")
    assert "bf16" not in teacher_recipe(fp32) and teacher_recipe(bf16)["bf16"] is True


def test_bf16_predictions_are_float32_probabilities_from_a_bf16_forward_pass() -> None:
    """``predict_proba(bf16=True)``: the forward pass under autocast (its logits are bf16
    rounded, so the probabilities differ from float32's), the softmax in float32 (rows sum to
    1), and the same arg-max on clearly separated inputs."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(64) % 2
    x = torch.randn(64, 3, 16, 16, generator=g) + 2.0 * y.view(-1, 1, 1, 1)
    model = build_model("tiny", 3, 2, seed=0)
    fit(model, TrainSettings(epochs=8, batch_size=16, learning_rate=0.01, augment=False), x, y)
    full, half = predict_proba(model, x), predict_proba(model, x, bf16=True)
    assert half.dtype.name == "float32" and half.shape == full.shape
    assert not np.array_equal(full, half)  # bf16 arithmetic, not float32's
    assert np.allclose(half.sum(1), 1.0, atol=1e-5)
    assert np.abs(full - half).max() < 0.05
    assert float((full.argmax(1) == half.argmax(1)).mean()) >= 0.95
    assert accuracy(model, x, y, bf16=True) == float((half.argmax(1) == y.numpy()).mean())
