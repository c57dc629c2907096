"""Aggregation rules for clients' soft predictions on the same reference indices.

Every rule takes m client arrays of shape (n, C) (rows are class probabilities) and returns one
float32 (n, C) array whose rows are non-negative and sum to one. A row whose aggregate has no
mass left (possible for the median) falls back to the uniform distribution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from common.errors import ConfigError
from server.replies import ClientReply

log = logging.getLogger(__name__)

# Replies grouped by the round that issued their indices: (replies, weight factors)
Groups = dict[int, tuple[list[ClientReply], list[float]]]


class Rule(StrEnum):
    MEAN = "mean"
    CLASS_WEIGHTED = "class-weighted"
    ENTROPY_REDUCED = "entropy-reduced"
    TRIMMED_MEAN = "trimmed-mean"
    MEDIAN = "median"
    # each client weighed by its trust (server/trust.py), then a base rule: the weighing is
    # the strategy's (server/defence.py); called on its own it is the mean
    HISTORY = "history"

    @classmethod
    def parse(cls, value: str) -> Rule:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ConfigError(
                f"unknown aggregation rule {value!r}: choose one of {choices}"
            ) from None


def _stack(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Validate the replies and stack them into a float64 (m, n, C) array."""
    if len(predictions) == 0:
        raise ValueError("nothing to aggregate: no valid replies")
    arrays = [np.asarray(p, dtype=np.float64) for p in predictions]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        listed = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"predictions must all have the same (n, C) shape, got {listed}")
    if arrays[0].ndim != 2:
        raise ValueError(f"predictions must be 2-D (samples, classes), got {arrays[0].shape}")
    stacked = np.stack(arrays)
    if not np.isfinite(stacked).all():
        raise ValueError("predictions contain NaN or Inf")
    if stacked.size and stacked.min() < 0:
        raise ValueError("predictions contain negative probabilities")
    return stacked


def _weights(weights: Sequence[float], m: int) -> np.ndarray:
    """Validate per-client weights and normalise them to sum to one (all zero -> equal)."""
    if len(weights) != m:
        raise ValueError(f"{m} predictions but {len(weights)} weights")
    w = np.asarray(weights, dtype=np.float64)
    if not np.isfinite(w).all() or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if w.sum() == 0:
        w = np.ones_like(w)
    normalised: np.ndarray = w / w.sum()
    return normalised


def _normalise(rows: np.ndarray) -> np.ndarray:
    """Rescale rows to sum to one; rows without mass become uniform. Returns float32."""
    num_classes = rows.shape[1]
    sums = rows.sum(axis=1, keepdims=True)
    uniform = np.full_like(rows, 1.0 / num_classes) if num_classes else rows
    out = np.where(sums > 0, rows / np.where(sums > 0, sums, 1.0), uniform)
    return out.astype(np.float32)


def weighted_mean(predictions: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Example-weighted mean ``sum_k w_k p_k / sum_k w_k``; rows stay normalised.

    Not robust: a single client can move any entry by up to its weight share.
    All-zero weights fall back to the plain (equal-weight) mean.
    """
    stacked = _stack(predictions)
    w = _weights(weights, len(stacked))
    return _normalise(np.tensordot(w, stacked, axes=1))


def class_weighted_mean(
    predictions: Sequence[np.ndarray], class_counts: Sequence[Sequence[float]]
) -> np.ndarray:
    """Per-class weighted mean: client k's vote on class c weighs by how many tiles of c it
    holds, ``sum_k n_kc p_k[:, c] / sum_k n_kc``; rows renormalised.

    Under label skew a client that never saw a class has no opinion on it worth averaging:
    its student puts that class's mass on the classes it knows. Classes no replying client
    holds fall back to the plain mean. Not robust (a client can claim large counts).
    """
    stacked = _stack(predictions)
    m, _, num_classes = stacked.shape
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.shape != (m, num_classes):
        raise ValueError(f"class counts have shape {counts.shape}, expected {(m, num_classes)}")
    if not np.isfinite(counts).all() or np.any(counts < 0):
        raise ValueError("class counts must be finite and non-negative")
    totals = counts.sum(axis=0)
    w = np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 1.0 / m)  # (m, C)
    return _normalise(np.einsum("kc,knc->nc", w, stacked))


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise ``p_i^(1/T) / sum_j p_j^(1/T)``; T < 1 lowers entropy, T = 1 is the identity.

    Computed in log space so that small T cannot underflow; ties keep equal shares.
    """
    if not (math.isfinite(temperature) and 0 < temperature <= 1):
        raise ConfigError(f"sharpen temperature must be in (0, 1], got {temperature}")
    p = np.asarray(probs, dtype=np.float64)
    if not p.size:
        return p.astype(np.float32)
    with np.errstate(divide="ignore"):
        logits = np.log(p) / temperature
    top = logits.max(axis=1, keepdims=True)
    return _normalise(np.exp(logits - np.where(np.isfinite(top), top, 0.0)))


def entropy_reduced(
    predictions: Sequence[np.ndarray], weights: Sequence[float], temperature: float = 0.5
) -> np.ndarray:
    """DS-FL entropy reduction aggregation (Itahara et al. 2021): sharpen(weighted mean, T).

    Same (lack of) robustness as the mean, but the sharper consensus keeps the students from
    drifting towards high-entropy targets when clients' data are non-IID.
    """
    return sharpen(weighted_mean(predictions, weights), temperature)


def _trim_count(trim: float, m: int) -> int:
    if not (math.isfinite(trim) and 0 < trim < 0.5):
        raise ConfigError(f"trim fraction must be in (0, 0.5), got {trim}")
    return math.floor(trim * m + 1e-9)


def coordinate_median(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Coordinate-wise median over clients of every (row, class) entry; rows renormalised.

    Unweighted. Robust: with fewer than half the clients Byzantine, every entry stays within
    the range of the honest clients' values. Rows whose medians sum to 0 become uniform.
    """
    return _normalise(np.median(_stack(predictions), axis=0))


def trimmed_mean(predictions: Sequence[np.ndarray], trim: float = 0.2) -> np.ndarray:
    """Coordinate-wise trimmed mean (Yin et al. 2018); rows renormalised.

    For every (row, class) entry drop the ``g = floor(trim * m)`` lowest and highest client
    values and average the other ``m - 2g``. Unweighted, so a client cannot buy influence by
    claiming many examples. Robust to up to g Byzantine clients: each entry stays within the
    range of the honest values. If ``g == 0`` (too few clients to trim one from each side) it
    falls back to the coordinate-wise median, which equals the mean for one or two clients.
    """
    stacked = _stack(predictions)
    m = len(stacked)
    g = _trim_count(trim, m)
    if g == 0:
        return _normalise(np.median(stacked, axis=0))
    kept = np.sort(stacked, axis=0)[g : m - g]
    return _normalise(kept.mean(axis=0))


def aggregate(
    rule: Rule,
    predictions: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    trim: float = 0.2,
    sharpen_temperature: float = 0.5,
    class_counts: Sequence[Sequence[float]] | None = None,
) -> np.ndarray:
    """Aggregate client predictions with ``rule`` into one float32 (n, C) array.

    ``weights`` (examples per client) are used by mean (and history, the mean of the clients
    the strategy already weighed by trust) and entropy-reduced; the robust rules
    ignore them but still check that there is one weight per client. ``class_counts`` (tiles
    per class per client) drive class-weighted; without them it is the weighted mean.
    """
    rule = Rule.parse(str(rule))
    if rule is Rule.MEAN or rule is Rule.HISTORY:
        return weighted_mean(predictions, weights)
    if rule is Rule.CLASS_WEIGHTED:
        _weights(weights, len(predictions))
        if class_counts is None:  # nothing to weigh classes by: the example-weighted mean
            return weighted_mean(predictions, weights)
        return class_weighted_mean(predictions, class_counts)
    if rule is Rule.ENTROPY_REDUCED:
        return entropy_reduced(predictions, weights, sharpen_temperature)
    _weights(weights, len(predictions))
    if rule is Rule.TRIMMED_MEAN:
        return trimmed_mean(predictions, trim)
    if rule is Rule.MEDIAN:
        return coordinate_median(predictions)
    raise ConfigError(f"aggregation rule {rule} is not implemented")


def merge_groups(
    groups: list[tuple[np.ndarray, np.ndarray, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregates on different index sets -> one (union, probabilities): where sets overlap,
    the mean weighted by each group's total weight."""
    union = np.unique(np.concatenate([g[0] for g in groups]))
    total = np.zeros((len(union), groups[0][1].shape[1]), dtype=np.float64)
    mass = np.zeros(len(union), dtype=np.float64)
    for indices, agg, weight in groups:
        rows = np.searchsorted(union, indices)
        total[rows] += weight * agg
        mass[rows] += weight
    return union, (total / mass[:, None]).astype(np.float32)


def aggregate_replies(
    rule: Rule,
    replies: Sequence[ClientReply],
    factors: Sequence[float],
    *,
    trim: float = 0.2,
    server_round: int = 0,
) -> np.ndarray:
    """Aggregate replies on one set of indices; weights = examples x ``factors`` (staleness).

    The class-weighted rule needs every reply's class counts (else the plain mean is used,
    and logged) and scales them by the factors, since it ignores example weights."""
    weights = [r.num_examples * f for r, f in zip(replies, factors, strict=True)]
    counts: list[Sequence[float] | None] = [r.class_counts for r in replies]
    if rule is Rule.CLASS_WEIGHTED and any(c is None for c in counts):
        log.warning("round %d: a reply lacks class counts, using the plain mean", server_round)
        return aggregate(Rule.MEAN, [r.probs for r in replies], weights)
    if rule is Rule.CLASS_WEIGHTED and any(f != 1.0 for f in factors):
        counts = [[f * n for n in c] if c else c for c, f in zip(counts, factors, strict=True)]
    return aggregate(
        rule,
        [r.probs for r in replies],
        weights,
        trim=trim,
        class_counts=[c for c in counts if c is not None],
    )


def aggregate_groups(
    rule: Rule, groups: Groups, issued: dict[int, np.ndarray], *, trim: float, server_round: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, aggregate) of replies grouped by the round that issued their indices
    (``issued``: round -> indices): one group's aggregate as it is, several merged."""
    aggs = {
        r: aggregate_replies(rule, *g, trim=trim, server_round=server_round)
        for r, g in groups.items()
    }
    parts = [(issued[r], agg, sum(groups[r][1])) for r, agg in aggs.items()]
    return parts[0][:2] if len(parts) == 1 else merge_groups(parts)
