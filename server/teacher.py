"""The ground segment's teacher: trained on the archive once, then loaded from a cache, and
optionally refined each round from the aggregated knowledge."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from common.codec import validate_probabilities
from common.config import RunConfig
from common.errors import CodecError
from common.federation import Federation, Split
from common.model_cache import cached_predictions, load_or_train
from common.models import build_model, count_parameters
from common.precision import use_bf16
from common.teacher_recipe import TEACHER_ARCH, teacher_recipe, teacher_settings
from common.training import (
    TrainSettings,
    accuracy,
    epochs_text,
    fit,
    make_optimizer,
    predict_proba,
)
from server.distil import distil_towards

log = logging.getLogger(__name__)

TEACHER_PHASE = "teacher (ResNet-style, labels the reference set)"
CACHE_NAME = "teacher"  # its entry in the model cache (common/model_cache.py)


def load_or_train_teacher(
    cfg: RunConfig, fed: Federation, *, progress: bool = False
) -> tuple[nn.Module, float]:
    """The trained teacher and its test accuracy; trained on the archive only if not cached.

    ``progress``: show a bar over its epochs (a cold training takes minutes)."""
    settings = teacher_settings(cfg)

    def train(model: nn.Module) -> None:
        archive = fed.split(fed.partition.archive)  # normalised only when it is needed
        start = time.perf_counter()
        fit(model, settings, archive.x, archive.y, progress=TEACHER_PHASE if progress else None)
        log.info("teacher trained in %.0f s", time.perf_counter() - start)

    model = build_model(TEACHER_ARCH, fed.spec.num_bands, fed.num_classes, seed=cfg.seed)
    what = (
        f"the ResNet-style teacher ({count_parameters(model) / 1e6:.1f}M parameters) on "
        f"{len(fed.partition.archive):,} labelled archive tiles for "
        f"{epochs_text(settings.epochs, settings.coarse_epochs)}; its soft labels on the "
        "reference set are where every round's knowledge starts"
    )

    def evaluate(m: nn.Module) -> float:
        test = fed.test_split()
        return accuracy(m, test.x, test.y)

    return load_or_train(
        CACHE_NAME,
        model,
        fed,
        teacher_recipe(cfg),
        train,
        evaluate,
        what=what,
    )


def reference_probs(
    cfg: RunConfig, fed: Federation, teacher: nn.Module, reference: torch.Tensor
) -> np.ndarray:
    """The teacher's soft labels on the (normalised) reference tiles, cached beside its
    weights: computed once, not by every run's driver and ServerApp again."""
    return cached_predictions(
        CACHE_NAME, fed, teacher_recipe(cfg), reference, lambda: predict_proba(teacher, reference)
    )


class TeacherRefiner:
    """Refinement of the teacher from the aggregated knowledge (``teacher-refine-epochs``).

    After each round's global-student distillation the teacher takes ``epochs`` passes of
    ``reference-per-round`` tiles (drawn from the whole reference set) towards K_t, paired
    with cross-entropy steps on archive batches so it keeps what the labels say. One
    learning-rate schedule at ``teacher-refine-lr`` runs over all rounds (a restart each round
    would undo the teacher's training). Its soft labels on the reference set then replace
    the teacher part of the knowledge mix.
    """

    def __init__(
        self,
        teacher: nn.Module,
        cfg: RunConfig,
        archive: Split,
        reference: torch.Tensor,
        test: Split,
    ) -> None:
        self.model = teacher
        self.cfg = cfg
        self.archive = archive
        self.reference = reference
        self.test = test
        self.settings = TrainSettings(
            epochs=cfg.teacher_refine_epochs,
            batch_size=cfg.batch_size,
            learning_rate=cfg.teacher_refine_lr,
            seed=cfg.seed,
            bf16=use_bf16(cfg.precision),
        )
        per_round = min(cfg.reference_per_round, len(reference))
        self.steps = math.ceil(per_round / cfg.batch_size)
        self.total_steps = cfg.num_rounds * cfg.teacher_refine_epochs * self.steps
        self.optimizer = make_optimizer(self.model, self.settings)

    def refine(self, targets: np.ndarray, server_round: int) -> np.ndarray:
        """One round of refinement towards ``targets``; returns the new soft labels.

        Raises :class:`CodecError` (and puts the teacher back as it was before this round)
        if the step diverged and the new soft labels are not usable probabilities."""
        start = time.perf_counter()
        before = self.state()
        settings = replace(self.settings, seed=self.settings.seed + 7919 * server_round)
        offset = (server_round - 1) * self.settings.epochs * self.steps
        distil_towards(
            self.model,
            settings,
            self.archive,
            self.reference,
            targets,
            temperature=self.cfg.temperature,
            steps=self.steps,
            schedule=(offset, self.total_steps),
            optimizer=self.optimizer,
        )
        probs = self.soft_labels()
        try:
            validate_probabilities(probs, targets.shape)
        except CodecError:
            self.load_state(before)
            raise
        log.info("round %d: teacher refined in %.1f s", server_round, time.perf_counter() - start)
        return probs

    def soft_labels(self) -> np.ndarray:
        """The teacher's class probabilities on every reference tile."""
        return predict_proba(self.model, self.reference)

    def evaluate(self) -> float:
        return accuracy(self.model, self.test.x, self.test.y)

    def state(self) -> dict[str, Any]:
        """A copy of the teacher and its optimiser (``state_dict`` alone would alias the
        moments that the next step updates in place)."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
