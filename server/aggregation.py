"""Aggregation rules for clients' soft predictions on the same reference indices."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from common.errors import ConfigError


class Rule(StrEnum):
    MEAN = "mean"

    @classmethod
    def parse(cls, value: str) -> Rule:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ConfigError(
                f"unknown aggregation rule {value!r}: choose one of {choices}"
            ) from None


def weighted_mean(predictions: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Example-weighted mean of (n, C) probability arrays; rows stay normalised."""
    if not predictions:
        raise ValueError("nothing to aggregate: no valid replies")
    if len(predictions) != len(weights):
        raise ValueError(f"{len(predictions)} predictions but {len(weights)} weights")
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not np.isfinite(w).all():
        raise ValueError("weights must be finite and non-negative")
    if w.sum() == 0:
        w = np.ones_like(w)
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])
    mean = np.tensordot(w / w.sum(), stacked, axes=1)
    mean /= mean.sum(axis=1, keepdims=True)
    return mean.astype(np.float32)


def aggregate(
    rule: Rule, predictions: Sequence[np.ndarray], weights: Sequence[float]
) -> np.ndarray:
    if rule is Rule.MEAN:
        return weighted_mean(predictions, weights)
    raise ConfigError(f"aggregation rule {rule} is not implemented")
