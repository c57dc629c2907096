from __future__ import annotations

import numpy as np
import pytest

from server.aggregation import Rule, aggregate, weighted_mean


def test_weighted_mean_by_examples() -> None:
    a = np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)
    b = np.array([[0.0, 1.0], [0.5, 0.5]], np.float32)
    out = weighted_mean([a, b], [3, 1])
    np.testing.assert_allclose(out, [[0.75, 0.25], [0.5, 0.5]])


def test_single_client_and_identical_replies_are_fixed_points() -> None:
    p = np.array([[0.2, 0.3, 0.5]], np.float32)
    np.testing.assert_allclose(weighted_mean([p], [7]), p, rtol=1e-6)
    np.testing.assert_allclose(weighted_mean([p, p, p], [1, 5, 2]), p, rtol=1e-6)


def test_zero_weights_fall_back_to_plain_mean() -> None:
    a = np.array([[1.0, 0.0]], np.float32)
    b = np.array([[0.0, 1.0]], np.float32)
    np.testing.assert_allclose(weighted_mean([a, b], [0, 0]), [[0.5, 0.5]])


def test_errors() -> None:
    with pytest.raises(ValueError, match="no valid replies"):
        weighted_mean([], [])
    with pytest.raises(ValueError, match="weights"):
        weighted_mean([np.ones((1, 2)) / 2], [-1])
    assert aggregate(Rule.parse("mean"), [np.eye(2, dtype=np.float32)], [1]).shape == (2, 2)
