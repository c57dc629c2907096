"""The ground segment's teacher: trained on the archive once, then loaded from a cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from common.config import RunConfig
from common.federation import Federation
from common.models import build_model, count_parameters
from common.settings import cache_dir
from common.training import TrainSettings, accuracy, fit

log = logging.getLogger(__name__)

TEACHER_ARCH = "teacher"


def teacher_key(cfg: RunConfig, fed: Federation) -> str:
    """Cache key: everything that changes the trained weights (data, split, recipe, torch)."""
    recipe = {
        "arch": TEACHER_ARCH,
        "dataset": cfg.dataset,
        "n": len(fed.arrays),
        "archive": hashlib.sha256(fed.partition.archive.tobytes()).hexdigest(),
        "labels": hashlib.sha256(fed.arrays.labels.tobytes()).hexdigest(),
        "epochs": cfg.teacher_epochs,
        "batch": cfg.batch_size,
        "lr": cfg.learning_rate,
        "seed": cfg.seed,
        "torch": torch.__version__,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def _save_atomic(state: dict[str, torch.Tensor], path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_or_train_teacher(cfg: RunConfig, fed: Federation) -> nn.Module:
    """Return the trained teacher, training it on the archive only if no cached copy exists."""
    model = build_model(TEACHER_ARCH, fed.spec.num_bands, fed.num_classes)
    path = cache_dir() / f"teacher-{cfg.dataset}-{teacher_key(cfg, fed)}.pt"
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            log.info("teacher loaded from cache %s", path)
            return model
        except (RuntimeError, OSError, EOFError) as exc:
            log.warning("teacher cache %s is unreadable (%s): training again", path, exc)
    archive = fed.split(fed.partition.archive)
    log.info(
        "training teacher (%d parameters) on %d archive tiles for %d epochs",
        count_parameters(model),
        len(archive),
        cfg.teacher_epochs,
    )
    start = time.perf_counter()
    fit(
        model,
        TrainSettings(
            epochs=cfg.teacher_epochs,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            seed=cfg.seed,
        ),
        archive.x,
        archive.y,
    )
    test = fed.split(fed.partition.test)
    log.info(
        "teacher trained in %.0f s, test accuracy %.4f",
        time.perf_counter() - start,
        accuracy(model, test.x, test.y),
    )
    _save_atomic(model.state_dict(), path)
    return model
