"""Differential privacy on the shared soft predictions (off by default).

Gaussian mechanism on the whole reply: each row is clipped to L2 norm ``clip`` (probability
rows have norm at most 1, so clip < 1 bounds a row's influence further), Gaussian noise of
standard deviation ``noise_multiplier * clip`` is added to every entry, and the rows are
projected back to probability vectors (negatives to zero, renormalised; uniform if nothing
is left). The noise multiplier is reported with the run so that (epsilon, delta) can be
accounted for the number of rounds a client takes part in.
"""

from __future__ import annotations

import numpy as np

from common.errors import ConfigError


def privatise(
    probs: np.ndarray, clip: float, noise_multiplier: float, rng: np.random.Generator
) -> np.ndarray:
    """Clip, add noise, and return valid (n, C) float32 probabilities."""
    if clip <= 0 or noise_multiplier < 0:
        raise ConfigError(f"dp-clip must be > 0 and dp-noise >= 0, got {clip}, {noise_multiplier}")
    p = np.asarray(probs, dtype=np.float64)
    if noise_multiplier == 0:
        return p.astype(np.float32)
    norms = np.linalg.norm(p, axis=1, keepdims=True)
    p = p * np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    p = p + rng.normal(0.0, noise_multiplier * clip, size=p.shape)
    p = np.clip(p, 0.0, None)
    sums = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1]) if p.shape[1] else p
    out: np.ndarray = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), uniform)
    return out.astype(np.float32)
