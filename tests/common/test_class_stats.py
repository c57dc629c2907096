from __future__ import annotations

import numpy as np
import pytest
import torch

from common.class_stats import ClassStats, features, linear_discriminant
from common.errors import CodecError
from common.models import build_model


def _blobs(n: int, classes: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(0, 1, (n, dim)), y


def test_pooled_statistics_equal_the_statistics_of_the_pooled_data() -> None:
    z, y = _blobs(300, 4, 5, 0)
    whole = ClassStats.of(z, y, 4)
    parts = ClassStats.of(z[:100], y[:100], 4) + ClassStats.of(z[100:], y[100:], 4)
    for a, b in zip(
        (whole.counts, whole.sums, whole.scatter),
        (parts.counts, parts.sums, parts.scatter),
        strict=True,
    ):
        np.testing.assert_allclose(a, b)


def test_discriminant_from_shards_that_each_miss_classes_classifies_them_all() -> None:
    z, y = _blobs(2000, 4, 6, 1)
    shards = [np.flatnonzero(np.isin(y, pair)) for pair in ((0, 1), (2, 3))]
    pooled = sum(
        (ClassStats.of(z[s], y[s], 4) for s in shards[1:]),
        ClassStats.of(z[shards[0]], y[shards[0]], 4),
    )
    weight, bias, known = linear_discriminant(pooled)
    assert known.all()
    assert ((z @ weight.T + bias).argmax(1) == y).mean() > 0.95
    only_first = ClassStats.of(z[shards[0]], y[shards[0]], 4)
    weight, bias, known = linear_discriminant(only_first)
    assert known.tolist() == [True, True, False, False]
    assert set((z @ weight.T + bias).argmax(1).tolist()) <= {0, 1}  # unknown: never predicted


def test_wire_form_round_trips_and_bad_arrays_are_refused() -> None:
    z, y = _blobs(50, 3, 4, 2)
    stats = ClassStats.of(z, y, 3)
    back = ClassStats.from_arrays(stats.to_arrays(), 3, 4)
    np.testing.assert_allclose(back.scatter, stats.scatter, rtol=1e-5)
    np.testing.assert_allclose(back.sums, stats.sums, rtol=1e-5)
    wire = stats.to_arrays()
    bad = {
        "missing": {k: v for k, v in wire.items() if k != "sums"},
        "shape": {**wire, "sums": wire["sums"][:, :2]},
        "nan": {**wire, "counts": np.full(3, np.nan, dtype=np.float32)},
        "negative": {**wire, "counts": -wire["counts"]},
        "dtype": {**wire, "counts": wire["counts"].astype(np.int64)},
    }
    for case, arrays in bad.items():
        with pytest.raises(CodecError):
            ClassStats.from_arrays(arrays, 3, 4)
        assert case


def test_features_cover_eight_views_of_a_student_backbone() -> None:
    model = build_model("tiny", 3, 10, seed=0)
    x = torch.randn(5, 3, 64, 64)
    f = features(model, x)
    assert f.shape == (8, 5, 64)
    # the head on the pooled features of view 0 is the model's own output
    with torch.no_grad():
        logits = model.eval()(x).numpy()
    head = model.head
    np.testing.assert_allclose(
        f[0] @ head.weight.detach().numpy().T + head.bias.detach().numpy(), logits, atol=1e-4
    )
    assert features(model, x, views=False).shape == (1, 5, 64)
