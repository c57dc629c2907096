"""Trained ground-segment models cached on disk, keyed by everything that shapes their weights."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write
from common.federation import Federation
from common.settings import cache_dir

log = logging.getLogger(__name__)

# What torch.load raises on a missing, truncated or foreign file (a cache entry to retrain).
UNREADABLE = (
    RuntimeError,
    OSError,
    EOFError,
    pickle.UnpicklingError,
    IndexError,
    ValueError,
    KeyError,
    TypeError,
)


def recipe_key(fed: Federation, recipe: Mapping[str, Any]) -> str:
    """Hash of the data (labels, archive split) and the training recipe."""
    full = {
        **recipe,
        "n": len(fed.arrays),
        "bands": fed.spec.key,
        "archive": hashlib.sha256(fed.partition.archive.tobytes()).hexdigest(),
        "reference": hashlib.sha256(fed.partition.reference.tobytes()).hexdigest(),
        "labels": hashlib.sha256(fed.arrays.labels.tobytes()).hexdigest(),
        "torch": torch.__version__,
        "init": "seeded",  # weights initialised from the recipe's seed (build_model's seed)
    }
    return hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:20]


def cache_path(name: str, fed: Federation, recipe: Mapping[str, Any]) -> Path:
    return cache_dir() / f"{name}-{fed.spec.key}-{recipe_key(fed, recipe)}.pt"


def load_cached(name: str, model: nn.Module, fed: Federation, recipe: Mapping[str, Any]) -> bool:
    """Load cached weights into ``model``; False if there are none (or they are unreadable)."""
    path = cache_path(name, fed, recipe)
    try:
        model.load_state_dict(torch.load(path, weights_only=True))
    except UNREADABLE:
        return False
    return True


def eval_set_key(fed: Federation) -> str:
    """Fingerprint of the split that scores are measured on: the internal test split's tiles,
    or every tile and label of the external ``test-dir`` folder."""
    digest = hashlib.sha256()
    if fed.external_test is None:
        digest.update(b"internal")
        digest.update(np.ascontiguousarray(fed.partition.test).tobytes())
        digest.update(np.ascontiguousarray(fed.arrays.labels).tobytes())
    else:
        images = np.ascontiguousarray(fed.external_test.images)
        digest.update(f"external {images.shape} {images.dtype}".encode())
        digest.update(images.data.cast("B"))
        digest.update(np.ascontiguousarray(fed.external_test.labels).tobytes())
    return digest.hexdigest()[:20]


def _stored_scores(path: Path) -> dict[str, float]:
    """Scores beside a cached model, by test-set key (an old unkeyed score counts as none)."""
    try:
        scores = json.loads(path.read_text())["scores"]
        return {str(k): float(v) for k, v in scores.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def load_or_train(
    name: str,
    model: nn.Module,
    fed: Federation,
    recipe: Mapping[str, Any],
    train: Callable[[nn.Module], None],
    evaluate: Callable[[nn.Module], float],
    *,
    what: str = "",
) -> tuple[nn.Module, float]:
    """``model`` with weights from the cache (or trained with ``train`` and cached) and its
    score from ``evaluate`` on the federation's test set, cached beside the weights by that
    test set's :func:`eval_set_key`, so that later runs on the same test set skip both.

    ``what`` says in the log what a cold run trains (and on what): the step can take minutes.
    """
    path = cache_path(name, fed, recipe)
    score_path = path.with_suffix(".json")
    loaded = path.is_file() and _load_weights(name, model, path)
    if loaded:
        log.info("%s: found in the cache (%s), not trained again", name, path)
    else:
        log.info(
            "%s: not in the cache yet, training %s (saved to %s for the next run)",
            name,
            what or "it",
            path,
        )
        train(model)
        state = model.state_dict()
        atomic_write(path, lambda fh: torch.save(state, fh))
    scores = _stored_scores(score_path) if loaded else {}
    test_key = eval_set_key(fed)
    if test_key not in scores:
        scores[test_key] = evaluate(model)
        payload = json.dumps({"scores": scores}).encode()
        atomic_write(score_path, lambda fh: fh.write(payload))
    return model, scores[test_key]


def cached_predictions(
    name: str,
    fed: Federation,
    recipe: Mapping[str, Any],
    inputs: torch.Tensor,
    predict: Callable[[], np.ndarray],
    *,
    kind: str = "predictions",
) -> np.ndarray:
    """``predict()`` (the cached model ``name``'s predictions on ``inputs``), cached beside its
    weights under a key of the weights file's bytes and the inputs' bytes: a retrained model
    or other inputs are another entry, never a stale one. ``kind`` names what ``predict``
    computes (``predictions``, or e.g. a backbone's ``features``): part of the key and the file
    name, so that two functions of one model on the same inputs never share an entry."""
    weights = cache_path(name, fed, recipe)
    digest = hashlib.sha256()
    try:
        digest.update(weights.read_bytes())
    except OSError:
        return predict()  # no cached weights to key by: nothing to reuse
    if kind != "predictions":  # the keys of the predictions cached before ``kind`` existed
        digest.update(f"kind={kind};".encode())
    digest.update(f"{tuple(inputs.shape)} {inputs.dtype}".encode())
    digest.update(inputs.detach().contiguous().numpy().tobytes())
    path = weights.with_name(f"{weights.stem}-{kind}-{digest.hexdigest()[:20]}.npy")
    try:
        found: np.ndarray = np.load(path, allow_pickle=False)
        return found
    except (OSError, ValueError, EOFError):
        pass
    values = predict()
    atomic_write(path, lambda fh: np.save(fh, values, allow_pickle=False))
    return values


def _load_weights(name: str, model: nn.Module, path: Path) -> bool:
    try:
        model.load_state_dict(torch.load(path, weights_only=True))
    except UNREADABLE as exc:
        log.warning("%s cache %s is unreadable (%s): training again", name, path, exc)
        return False
    return True
