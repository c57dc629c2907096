"""What makes the ground segment's teacher: its architecture and training settings.

One place for the teacher's cache recipe, and for the list that stands for the teacher in the
recipes of the models distilled from it (the global student's pre-training in ``server``, the
pre-installed students in ``common.preinstalled``), so that every cached model is keyed by the
same teacher.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from common.config import RunConfig
from common.precision import use_bf16
from common.training import TrainSettings

TEACHER_ARCH = "teacher"


def ground_settings(cfg: RunConfig, epochs: int) -> TrainSettings:
    """The training settings the ground's models share (teacher, global and pre-installed
    students): the run's batch size, learning rate and seed, for ``epochs``."""
    return TrainSettings(
        epochs=epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        seed=cfg.seed,
        bf16=use_bf16(cfg.precision),
    )


def coarse_epochs(cfg: RunConfig) -> int:
    """How many of the teacher's first epochs run at half resolution: ``teacher-coarse-fraction``
    of ``teacher-epochs``, rounded down, so at least the last epoch sees full-size tiles."""
    return coarse_share(cfg.teacher_coarse_fraction, cfg.teacher_epochs)


def coarse_share(fraction: float, epochs: int) -> int:
    """``fraction`` of ``epochs``, rounded down and at most ``epochs - 1``: the first epochs of
    a ground model's training that see the tiles at half resolution (progressive resizing)."""
    coarse = math.floor(fraction * epochs + 1e-9)
    return max(0, min(coarse, epochs - 1))


def student_settings(cfg: RunConfig, epochs: int) -> TrainSettings:
    """A ground student's pre-training settings (the global student's, a pre-installed one's):
    the ground's shared settings for ``epochs``, the first ``student-coarse-fraction`` of them
    at half resolution."""
    return replace(
        ground_settings(cfg, epochs),
        coarse_epochs=coarse_share(cfg.student_coarse_fraction, epochs),
    )


def teacher_settings(cfg: RunConfig) -> TrainSettings:
    return replace(ground_settings(cfg, cfg.teacher_epochs), coarse_epochs=coarse_epochs(cfg))


def teacher_recipe(cfg: RunConfig) -> dict[str, Any]:
    """What, besides the data (:func:`common.model_cache.recipe_key`), makes the teacher's
    weights: its architecture and training settings (no round count, no client knob)."""
    return {"arch": TEACHER_ARCH, **teacher_settings(cfg).recipe()}


def teacher_key(cfg: RunConfig) -> list[int | float | str]:
    """What stands for the teacher in the cache recipes of the models distilled from it: its
    training settings, in the order the cached models were keyed by."""
    settings = teacher_settings(cfg)
    key: list[int | float | str] = [
        settings.epochs, settings.learning_rate, settings.batch_size, settings.seed
    ]  # fmt: skip
    if settings.bf16:
        key.append("bf16")
    if settings.coarse_epochs:  # absent when 0: the keys cached before the setting existed
        key.append(f"coarse{settings.coarse_epochs}")
    return key
