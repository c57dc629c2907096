"""Trained ground-segment models cached on disk, keyed by everything that shapes their weights."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import atomic_write
from common.federation import Federation
from common.settings import cache_dir

log = logging.getLogger(__name__)


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
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError):
        return False
    return True


def load_or_train(
    name: str,
    model: nn.Module,
    fed: Federation,
    recipe: Mapping[str, Any],
    train: Callable[[nn.Module], None],
    evaluate: Callable[[nn.Module], float],
) -> tuple[nn.Module, float]:
    """``model`` with weights from the cache (or trained with ``train`` and cached) and its
    score from ``evaluate``, cached beside the weights so that later runs skip both."""
    path = cache_path(name, fed, recipe)
    score_path = path.with_suffix(".json")
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            log.info("%s loaded from cache %s", name, path)
            try:
                return model, float(json.loads(score_path.read_text())["score"])
            except (OSError, ValueError, KeyError, TypeError):
                score = evaluate(model)
                atomic_write(score_path, lambda fh: fh.write(json.dumps({"score": score}).encode()))
                return model, score
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
            log.warning("%s cache %s is unreadable (%s): training again", name, path, exc)
    train(model)
    state = model.state_dict()
    atomic_write(path, lambda fh: torch.save(state, fh))
    score = evaluate(model)
    atomic_write(score_path, lambda fh: fh.write(json.dumps({"score": score}).encode()))
    return model, score
