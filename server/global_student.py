"""The server-side global student, distilled each round from the federation's knowledge.

The ground segment holds the labelled archive and the public reference set. Before the first
round the global student is pre-trained there (cross-entropy on the archive, distillation
towards the teacher on the reference tiles; cached like the teacher). Each round it then takes
one pass of distillation steps towards K_t on the reference tiles, paired with cross-entropy
steps on archive batches, and is evaluated on the server's test split.

One learning-rate cycle runs over pre-training and every round (a restart each round would
undo what was learnt). Pre-training runs its part of that cycle as planned for
:data:`PLANNED_ROUNDS` rounds; the rounds then finish the cycle, stretched or squeezed over
however many rounds the run has (:func:`common.training.resumed_cycle`). So the pre-trained
weights, and their cache key, do not depend on ``num-rounds``: a run with another round count
loads them from the cache instead of pre-training again.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write
from common.config import RunConfig
from common.digest import tensor_digest
from common.federation import Federation, Split
from common.model_cache import load_or_train
from common.models import build_model
from common.preinstalled import (
    PLANNED_ROUNDS,
    global_pretrain_settings,
    global_recipe,
    global_schedule,
    global_settings,
)
from common.training import (
    accuracy,
    epochs_text,
    fit,
    make_optimizer,
    resumed_cycle,
)
from server.distil import distil_towards
from server.distil_cache import DistilCache

log = logging.getLogger(__name__)

__all__ = ["GLOBAL_STUDENT_FILE", "PLANNED_ROUNDS", "GlobalStudent"]

GLOBAL_STUDENT_FILE = "global-student.pt"  # its state_dict, in out-dir at the end of a run


class GlobalStudent:
    def __init__(self, fed: Federation, cfg: RunConfig) -> None:
        self.fed = fed
        self.cfg = cfg
        self.model = build_model(
            cfg.global_student, fed.spec.num_bands, fed.num_classes, seed=cfg.seed
        )
        self.settings = global_settings(cfg)
        self.archive: Split = fed.split(fed.partition.archive)
        self.reference = fed.reference_images(np.arange(len(fed.partition.reference)))
        self.test: Split = fed.test_split()
        # One learning-rate cycle over pre-training and every round (see the module's doc):
        # pre-training's part is planned for PLANNED_ROUNDS rounds, whatever num-rounds is.
        self.pretrain_steps, self.round_steps, self.planned_steps = global_schedule(cfg, fed)
        self.total_steps = self.pretrain_steps + cfg.num_rounds * self.round_steps
        self._optimizer: torch.optim.Optimizer | None = None  # made when first needed
        self.cache = DistilCache(Path(cfg.distil_cache)) if cfg.distil_cache else None
        self._data_digest = ""  # of the archive and reference tensors, once the cache asks
        self.last_reused = False  # the last distil() loaded its update from the cache

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The student's AdamW, made on first use: a process that only loads or evaluates the
        student (the CLI's ground preparation with the student cached) never makes one, and
        torch imports its compiler stack (about 1.5 CPU-s here) for the first optimiser of a
        process."""
        if self._optimizer is None:
            self._optimizer = make_optimizer(self.model, self.settings)
        return self._optimizer

    def learning_rate(self, step: int) -> float:
        """The rate at global ``step`` (pre-training's steps first, then the rounds')."""
        return resumed_cycle(
            step,
            done=self.pretrain_steps,
            planned=self.planned_steps,
            total=self.total_steps,
            peak=self.settings.learning_rate,
        )

    def pretrain_recipe(self) -> dict[str, Any]:
        """What, besides the data (:func:`common.model_cache.recipe_key`), makes the
        pre-trained weights: no round count (pre-training plans for PLANNED_ROUNDS). The
        pre-installed student of its architecture is the same cache entry
        (:func:`common.preinstalled.cache_entry`)."""
        return global_recipe(self.cfg, self.fed)

    def pretrain(self, teacher_probs: np.ndarray, *, progress: bool = False) -> float:
        """Start from the archive and the teacher (cached): what the ground segment knows.

        Returns the test accuracy it starts the federation with. ``progress``: show a bar
        over its epochs (a cold pre-training takes minutes)."""
        cfg = self.cfg
        settings = global_pretrain_settings(cfg)
        if settings.epochs == 0:
            return self.evaluate()
        phase = f"global student ({cfg.global_student} CNN, the server's model the rounds refine)"

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
                schedule=(0, self.planned_steps),
                optimizer=self.optimizer,
                progress=phase if progress else None,
            )
            log.info("global student pre-trained in %.0f s", time.perf_counter() - start)

        what = (
            f"the {cfg.global_student} global student on {len(self.archive):,} labelled archive "
            f"tiles and the teacher's soft labels on {len(self.reference):,} reference tiles for "
            f"{epochs_text(settings.epochs, settings.coarse_epochs)}; it is the server's model, "
            "which the rounds refine, and the pre-installed student that clients of its "
            "architecture start from"
        )
        _, score = load_or_train(
            f"global-{cfg.global_student}",
            self.model,
            self.fed,
            self.pretrain_recipe(),
            train,
            lambda _m: self.evaluate(),
            what=what,
        )
        return score

    def distil(self, targets: np.ndarray, server_round: int) -> float:
        """One round of training towards ``targets`` (the knowledge on every reference tile)."""
        settings = replace(self.settings, seed=self.settings.seed + server_round)
        # An epoch is one pass over the reference set; archive batches are cycled alongside.
        steps = math.ceil(len(self.reference) / settings.batch_size)
        offset = self.pretrain_steps + (server_round - 1) * self.round_steps
        key = ""
        self.last_reused = False
        if self.cache is not None:
            key = self.cache.key(self.model, self.optimizer, targets, self._context(server_round))
            loss = self.cache.load(key, self.model, self.optimizer)
            if loss is not None:
                log.info(
                    "round %d: the global student's update found in the distil cache (%s: an "
                    "earlier run of this benchmark had the same start, targets and round)",
                    server_round,
                    self.cache.folder,
                )
                self.last_reused = True
                return loss
        loss = distil_towards(
            self.model,
            settings,
            self.archive,
            self.reference,
            targets,
            temperature=self.temperature,
            steps=steps,
            schedule=(offset, self.total_steps),
            optimizer=self.optimizer,
            lr_at=self.learning_rate,
        )
        if self.cache is not None:
            self.cache.save(key, self.model, self.optimizer, loss)
        return loss

    def _context(self, server_round: int) -> dict[str, Any]:
        """What a round's update depends on besides the weights, optimiser state and targets."""
        if not self._data_digest:
            self._data_digest = tensor_digest(self.archive.x, self.archive.y, self.reference)
        return {
            "round": server_round,
            "settings": self.settings.recipe(),
            "temperature": self.temperature,
            "schedule": [self.pretrain_steps, self.round_steps, self.planned_steps],
            "total_steps": self.total_steps,
            "data": self._data_digest,
        }

    @property
    def temperature(self) -> float:
        return self.cfg.temperature

    def evaluate(self) -> float:
        """Test accuracy, in the rounds' arithmetic (bf16 autocast where they train in it)."""
        return accuracy(self.model, self.test.x, self.test.y, bf16=self.settings.bf16)

    def save(self, out_dir: Path) -> Path:
        """Write the model's weights (its state_dict) to ``out_dir/GLOBAL_STUDENT_FILE``."""
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return atomic_write(out_dir / GLOBAL_STUDENT_FILE, lambda fh: torch.save(state, fh))
