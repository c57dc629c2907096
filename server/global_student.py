"""The server-side global student, distilled each round from the federation's knowledge.

The ground segment holds the labelled archive and the public reference set. Before the first
round the global student is pre-trained there (cross-entropy on the archive, distillation
towards the teacher on the reference tiles; cached like the teacher). Each round it then takes
one pass of distillation steps towards K_t on the reference tiles, paired with cross-entropy
steps on archive batches, and is evaluated on the server's test split.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from common.config import RunConfig
from common.federation import Federation, Split
from common.model_cache import load_or_train
from common.models import build_model
from common.training import TrainSettings, accuracy, fit, make_optimizer

log = logging.getLogger(__name__)


def distil_towards(
    model: nn.Module,
    settings: TrainSettings,
    archive: Split,
    reference: torch.Tensor,
    targets: np.ndarray,
    *,
    temperature: float,
    steps: int,
    schedule: tuple[int, int],
    optimizer: torch.optim.Optimizer,
) -> float:
    """``settings.epochs`` times ``steps`` steps of distillation towards ``targets`` (one row
    per reference tile), each paired with a cross-entropy step on an archive batch; the
    learning rate follows ``schedule`` (offset, total). Returns the last epoch's mean loss."""
    if targets.shape[0] != len(reference):
        raise ValueError(f"{targets.shape[0]} targets for {len(reference)} reference tiles")
    return fit(
        model,
        settings,
        archive.x,
        archive.y,
        reference,
        torch.from_numpy(targets),
        temperature=temperature,
        steps_per_epoch=steps,
        schedule=schedule,
        optimizer=optimizer,
    )


class GlobalStudent:
    def __init__(self, fed: Federation, cfg: RunConfig) -> None:
        self.fed = fed
        self.cfg = cfg
        self.model = build_model(
            cfg.global_student, fed.spec.num_bands, fed.num_classes, seed=cfg.seed
        )
        self.settings = TrainSettings(
            epochs=cfg.server_epochs,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            seed=cfg.seed,
        )
        self.archive: Split = fed.split(fed.partition.archive)
        self.reference = fed.reference_images(np.arange(len(fed.partition.reference)))
        self.test: Split = fed.test_split()
        # One learning-rate schedule over pre-training and every round: the rounds continue
        # the pre-training instead of restarting it (a restart undoes what was learnt).
        bs = cfg.batch_size
        self.pretrain_steps = cfg.global_pretrain_epochs * math.ceil(
            max(len(self.archive), len(self.reference)) / bs
        )
        self.round_steps = cfg.server_epochs * math.ceil(len(self.reference) / bs)
        self.total_steps = self.pretrain_steps + cfg.num_rounds * self.round_steps
        self.optimizer = make_optimizer(self.model, self.settings)

    def pretrain(self, teacher_probs: np.ndarray) -> float:
        """Start from the archive and the teacher (cached): what the ground segment knows.

        Returns the test accuracy it starts the federation with."""
        cfg = self.cfg
        settings = replace(self.settings, epochs=cfg.global_pretrain_epochs)
        if settings.epochs == 0:
            return self.evaluate()

        def train(model: nn.Module) -> None:
            start = time.perf_counter()
            fit(
                model,
                settings,
                self.archive.x,
                self.archive.y,
                self.reference,
                torch.from_numpy(teacher_probs),
                temperature=cfg.temperature,
                schedule=(0, self.total_steps),
                optimizer=self.optimizer,
            )
            log.info("global student pre-trained in %.0f s", time.perf_counter() - start)

        recipe = {
            "arch": cfg.global_student,
            "temperature": cfg.temperature,
            "teacher": [cfg.teacher_epochs, cfg.learning_rate, cfg.batch_size, cfg.seed],
            "schedule": [self.pretrain_steps, self.total_steps],
            **settings.__dict__,
        }
        _, score = load_or_train(
            f"global-{cfg.global_student}",
            self.model,
            self.fed,
            recipe,
            train,
            lambda _m: self.evaluate(),
        )
        return score

    def distil(self, targets: np.ndarray, server_round: int) -> float:
        """One round of training towards ``targets`` (the knowledge on every reference tile)."""
        settings = replace(self.settings, seed=self.settings.seed + server_round)
        # An epoch is one pass over the reference set; archive batches are cycled alongside.
        steps = math.ceil(len(self.reference) / settings.batch_size)
        offset = self.pretrain_steps + (server_round - 1) * self.round_steps
        return distil_towards(
            self.model,
            settings,
            self.archive,
            self.reference,
            targets,
            temperature=self.temperature,
            steps=steps,
            schedule=(offset, self.total_steps),
            optimizer=self.optimizer,
        )

    @property
    def temperature(self) -> float:
        return self.cfg.temperature

    def evaluate(self) -> float:
        return accuracy(self.model, self.test.x, self.test.y)
