from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from common.errors import ConfigError
from server.aggregation import Rule, aggregate, sharpen, weighted_mean


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


# --- every rule ---------------------------------------------------------------------------

ALL_RULES = list(Rule)
F32 = np.float32


def _dirichlet(rng: np.random.Generator, alpha: np.ndarray, n: int) -> np.ndarray:
    return rng.dirichlet(alpha, size=n).astype(F32)


def test_rules_parse_by_name() -> None:
    assert [Rule.parse(r.value) for r in Rule] == ALL_RULES
    assert {r.value for r in Rule} == {
        "mean",
        "class-weighted",
        "entropy-reduced",
        "trimmed-mean",
        "median",
        "history",  # the mean of what the strategy weighed by trust (server/defence.py)
    }
    np.testing.assert_array_equal(
        aggregate(Rule.HISTORY, [np.eye(3)[[0]], np.eye(3)[[1]]], [3, 1]),
        aggregate(Rule.MEAN, [np.eye(3)[[0]], np.eye(3)[[1]]], [3, 1]),
    )
    with pytest.raises(ConfigError, match="trimmed-mean"):
        Rule.parse("krum")


def test_entropy_reduced_hand_computed() -> None:
    a = np.array([[0.6, 0.4], [0.5, 0.5]], F32)
    b = np.array([[0.2, 0.8], [0.5, 0.5]], F32)
    # mean row 0 = [0.4, 0.6]; squared (T = 0.5) = [0.16, 0.36] -> [4/13, 9/13]; the tie stays
    out = aggregate(Rule.ENTROPY_REDUCED, [a, b], [1, 1])
    np.testing.assert_allclose(out, [[4 / 13, 9 / 13], [0.5, 0.5]], rtol=1e-6)
    # weights act before sharpening: 3:1 -> mean [0.5, 0.5]
    np.testing.assert_allclose(aggregate(Rule.ENTROPY_REDUCED, [a, b], [3, 1])[0], [0.5, 0.5])
    # T = 1/3 cubes the mean: [0.064, 0.216] -> [8/35, 27/35]
    out = aggregate(Rule.ENTROPY_REDUCED, [a, b], [1, 1], sharpen_temperature=1 / 3)
    np.testing.assert_allclose(out[0], [8 / 35, 27 / 35], rtol=1e-5)


def test_sharpen_small_temperature_is_argmax_without_underflow() -> None:
    p = np.array([[0.3, 0.4, 0.3], [0.1, 0.1, 0.8], [0.0, 0.5, 0.5]], F32)
    np.testing.assert_allclose(sharpen(p, 1e-3), [[0, 1, 0], [0, 0, 1], [0, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(sharpen(p, 1.0), p, rtol=1e-6)


# Five clients, three classes. Per class the sorted values are
#   class 0: 0, 0, .5, .5, 1  class 1: 0, 0, 0, .5, 1  class 2: 0, 0, 0, .5, 1
FIVE = [
    np.array([[1.0, 0.0, 0.0]], F32),
    np.array([[0.0, 1.0, 0.0]], F32),
    np.array([[0.0, 0.0, 1.0]], F32),
    np.array([[0.5, 0.5, 0.0]], F32),
    np.array([[0.5, 0.0, 0.5]], F32),
]


def test_trimmed_mean_hand_computed_and_renormalised() -> None:
    # trim 0.2 of 5 drops one low and one high value: means 1/3, 1/6, 1/6 (sum 2/3) -> renormalise
    out = aggregate(Rule.TRIMMED_MEAN, FIVE, [1, 1, 1, 1, 1])
    np.testing.assert_allclose(out, [[0.5, 0.25, 0.25]], rtol=1e-6)
    # unweighted: a client claiming many examples buys nothing
    np.testing.assert_allclose(aggregate(Rule.TRIMMED_MEAN, FIVE, [1000, 1, 1, 1, 1]), out)


def test_trimmed_mean_with_ties_and_larger_trim() -> None:
    c0 = [0.1, 0.2, 0.2, 0.2, 0.9]  # a tie in the middle
    preds = [np.array([[v, 1 - v]], F32) for v in c0]
    np.testing.assert_allclose(aggregate(Rule.TRIMMED_MEAN, preds, [1] * 5), [[0.2, 0.8]])
    # trim 0.4 of 5 drops two from each side: only the middle value remains
    preds = [np.array([[v, 1 - v]], F32) for v in [0.1, 0.3, 0.4, 0.6, 0.9]]
    out = aggregate(Rule.TRIMMED_MEAN, preds, [1] * 5, trim=0.4)
    np.testing.assert_allclose(out, [[0.4, 0.6]], rtol=1e-6)


def test_trimmed_mean_falls_back_to_median_with_too_few_clients() -> None:
    # 3 clients, trim 0.2 -> floor(0.6) = 0 per side: coordinate median [0.6, 0.4, 0]
    preds = [
        np.array([[1.0, 0.0, 0.0]], F32),
        np.array([[0.0, 1.0, 0.0]], F32),
        np.array([[0.6, 0.4, 0.0]], F32),
    ]
    out = aggregate(Rule.TRIMMED_MEAN, preds, [1, 1, 1])
    np.testing.assert_allclose(out, [[0.6, 0.4, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(out, aggregate(Rule.MEDIAN, preds, [1, 1, 1]))
    # with two clients the median is their plain mean
    out = aggregate(Rule.TRIMMED_MEAN, preds[:2], [5, 1])
    np.testing.assert_allclose(out, [[0.5, 0.5, 0.0]])


def test_median_hand_computed() -> None:
    # medians 0.5, 0, 0 (sum 0.5) -> [1, 0, 0]
    np.testing.assert_allclose(aggregate(Rule.MEDIAN, FIVE, [1] * 5), [[1.0, 0.0, 0.0]])
    # even count: the mean of the two middle values, per class: (0.3+0.5)/2, (0.7+0.5)/2
    preds = [np.array([[v, 1 - v]], F32) for v in [0.1, 0.3, 0.5, 0.7]]
    np.testing.assert_allclose(aggregate(Rule.MEDIAN, preds, [1] * 4), [[0.4, 0.6]], rtol=1e-6)


def test_median_of_disjoint_one_hots_falls_back_to_uniform() -> None:
    preds = [np.eye(3, dtype=F32)[[i]] for i in range(3)]
    np.testing.assert_allclose(aggregate(Rule.MEDIAN, preds, [1, 1, 1]), [[1 / 3] * 3])


@pytest.mark.parametrize("rule", ALL_RULES)
@pytest.mark.parametrize("clients", [1, 2, 5, 10])
def test_identical_replies_are_fixed_points(rule: Rule, clients: int) -> None:
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]], F32)
    out = aggregate(rule, [p] * clients, list(range(1, clients + 1)))
    expected = sharpen(p, 0.5) if rule is Rule.ENTROPY_REDUCED else p
    assert out.dtype == np.float32 and out.shape == p.shape
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sharpen(p, 0.5)[0], np.array([4, 9, 25]) / 38, rtol=1e-6)


@pytest.mark.parametrize("rule", ALL_RULES)
def test_rows_sum_to_one(rule: Rule) -> None:
    rng = np.random.default_rng(1)
    preds = [_dirichlet(rng, np.full(7, 0.3), 40) for _ in range(6)]
    out = aggregate(rule, preds, rng.integers(0, 50, 6).tolist())
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    assert out.min() >= 0


# --- robustness ---------------------------------------------------------------------------


def _attack(kind: str, honest: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, c = honest.shape
    if kind == "inverted":  # all mass on the class the honest clients find least likely
        return np.eye(c, dtype=F32)[honest.argmin(axis=1)]
    if kind == "constant":  # the same one-hot answer whatever the tile
        return np.tile(np.eye(c, dtype=F32)[c - 1], (n, 1))
    return _dirichlet(rng, np.ones(c), n)  # random


@pytest.mark.parametrize("kind", ["inverted", "constant", "random"])
def test_robust_rules_resist_two_byzantine_clients_of_ten(kind: str) -> None:
    rng = np.random.default_rng(7)
    n, c = 50, 10
    base = _dirichlet(rng, np.full(c, 0.5), n).astype(np.float64)
    base = 0.9 * base + 0.1 / c  # keep every class reachable for the honest noise
    honest = [np.stack([rng.dirichlet(400 * row) for row in base]).astype(F32) for _ in range(8)]
    reference = np.mean(honest, axis=0)
    byzantine = [_attack(kind, reference, rng) for _ in range(2)]
    preds, weights = honest + byzantine, [1] * 10

    def error(rule: Rule) -> float:
        return float(np.abs(aggregate(rule, preds, weights) - reference).max())

    assert error(Rule.TRIMMED_MEAN) < 0.05
    assert error(Rule.MEDIAN) < 0.05
    assert error(Rule.MEAN) > 0.05
    assert error(Rule.MEAN) > 2 * max(error(Rule.TRIMMED_MEAN), error(Rule.MEDIAN))


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)


def test_entropy_reduced_lowers_row_entropy() -> None:
    rng = np.random.default_rng(3)
    preds = [_dirichlet(rng, np.ones(5), 30) for _ in range(4)]
    mean = aggregate(Rule.MEAN, preds, [1, 2, 3, 4])
    reduced = aggregate(Rule.ENTROPY_REDUCED, preds, [1, 2, 3, 4])
    assert np.all(_entropy(reduced) < _entropy(mean))
    np.testing.assert_array_equal(reduced.argmax(axis=1), mean.argmax(axis=1))
    sharper = aggregate(Rule.ENTROPY_REDUCED, preds, [1, 2, 3, 4], sharpen_temperature=0.2)
    assert np.all(_entropy(sharper) < _entropy(reduced))


# --- input validation ---------------------------------------------------------------------


@pytest.mark.parametrize("rule", ALL_RULES)
def test_every_rule_validates_inputs(rule: Rule) -> None:
    p = np.full((2, 3), 1 / 3, F32)
    with pytest.raises(ValueError, match="no valid replies"):
        aggregate(rule, [], [])
    with pytest.raises(ValueError, match=r"\(2, 3\), \(2, 4\)"):
        aggregate(rule, [p, np.full((2, 4), 0.25, F32)], [1, 1])
    with pytest.raises(ValueError, match="2-D"):
        aggregate(rule, [np.full(3, 1 / 3, F32)], [1])
    bad = p.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        aggregate(rule, [p, bad], [1, 1])
    with pytest.raises(ValueError, match="negative"):
        aggregate(rule, [p, -p], [1, 1])
    with pytest.raises(ValueError, match="2 predictions but 1 weights"):
        aggregate(rule, [p, p], [1])


@pytest.mark.parametrize("trim", [0.0, 0.5, -0.1, float("nan")])
def test_trim_fraction_is_checked(trim: float) -> None:
    with pytest.raises(ConfigError, match="trim"):
        aggregate(Rule.TRIMMED_MEAN, [np.eye(2, dtype=F32)] * 4, [1] * 4, trim=trim)


@pytest.mark.parametrize("temperature", [0.0, -1.0, 1.5, float("inf")])
def test_sharpen_temperature_is_checked(temperature: float) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        aggregate(
            Rule.ENTROPY_REDUCED, [np.eye(2, dtype=F32)], [1], sharpen_temperature=temperature
        )


# --- property -----------------------------------------------------------------------------


@st.composite
def _replies(draw: st.DrawFn) -> tuple[list[np.ndarray], list[float]]:
    m = draw(st.integers(1, 12))
    n = draw(st.integers(1, 20))
    c = draw(st.integers(2, 10))
    raw = draw(
        hnp.arrays(np.float32, (m, n, c), elements=st.floats(0, 1, width=32), fill=st.nothing())
    )
    sums = raw.sum(axis=2, keepdims=True)
    probs = np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1 / c).astype(F32)
    weights = draw(st.lists(st.integers(0, 10_000), min_size=m, max_size=m))
    return list(probs), [float(w) for w in weights]


@settings(max_examples=60, deadline=None)
@given(replies=_replies(), rule=st.sampled_from(ALL_RULES))
def test_every_rule_returns_valid_rows(
    replies: tuple[list[np.ndarray], list[float]], rule: Rule
) -> None:
    preds, weights = replies
    out = aggregate(rule, preds, weights)
    assert out.shape == preds[0].shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_class_weighted_mean_lets_the_holders_of_a_class_decide_it() -> None:
    # Client a holds only class 0, client b only class 1; on a tile of class 1, a (which never
    # saw class 1) puts its mass on class 0 and b on class 1.
    a = np.array([[0.9, 0.1]], np.float32)
    b = np.array([[0.2, 0.8]], np.float32)
    out = aggregate(Rule.CLASS_WEIGHTED, [a, b], [10, 10], class_counts=[[10, 0], [0, 10]])
    # class 0 is decided by a (0.9), class 1 by b (0.8), then the row is renormalised.
    np.testing.assert_allclose(out, [[0.9 / 1.7, 0.8 / 1.7]], rtol=1e-6)
    plain = aggregate(Rule.MEAN, [a, b], [10, 10])
    assert out[0, 1] > plain[0, 1]


def test_class_weighted_mean_edge_cases() -> None:
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], np.float32)
    # single client and identical replies are fixed points
    np.testing.assert_allclose(
        aggregate(Rule.CLASS_WEIGHTED, [p], [4], class_counts=[[1, 2, 1]]), p, rtol=1e-6
    )
    np.testing.assert_allclose(
        aggregate(Rule.CLASS_WEIGHTED, [p, p], [4, 4], class_counts=[[1, 0, 3], [0, 5, 0]]),
        p,
        rtol=1e-6,
    )
    # a class nobody holds falls back to the plain mean; a tie stays a tie
    a = np.array([[0.5, 0.5, 0.0]], np.float32)
    b = np.array([[0.5, 0.0, 0.5]], np.float32)
    out = aggregate(Rule.CLASS_WEIGHTED, [a, b], [1, 1], class_counts=[[3, 0, 0], [3, 0, 0]])
    np.testing.assert_allclose(out, [[0.5, 0.25, 0.25]], rtol=1e-6)
    with pytest.raises(ValueError, match="class counts"):
        aggregate(Rule.CLASS_WEIGHTED, [a, b], [1, 1], class_counts=[[1, 0, 0]])
    np.testing.assert_array_equal(  # no counts: the example-weighted mean
        aggregate(Rule.CLASS_WEIGHTED, [a, b], [1, 3]), aggregate(Rule.MEAN, [a, b], [1, 3])
    )
    with pytest.raises(ValueError, match="non-negative"):
        aggregate(Rule.CLASS_WEIGHTED, [a, b], [1, 1], class_counts=[[1, -1, 0], [1, 0, 0]])
