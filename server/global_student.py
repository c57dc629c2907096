"""The server-side global student, distilled each round from the federation's knowledge.

The ground segment holds the labelled archive and the public reference set: each round the
global student takes cross-entropy steps on the archive and distillation steps towards K_t on
the reference tiles, then is evaluated on the server's test split.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from common.federation import Federation, Split
from common.models import build_model
from common.training import TrainSettings, accuracy, fit


class GlobalStudent:
    def __init__(
        self, fed: Federation, arch: str, settings: TrainSettings, temperature: float
    ) -> None:
        self.model = build_model(arch, fed.spec.num_bands, fed.num_classes)
        self.settings = settings
        self.temperature = temperature
        self.archive: Split = fed.split(fed.partition.archive)
        self.reference = fed.reference_images(np.arange(len(fed.partition.reference)))
        self.test: Split = fed.split(fed.partition.test)

    def distil(self, targets: np.ndarray, server_round: int) -> float:
        """One round of training towards ``targets`` (the knowledge on every reference tile)."""
        if targets.shape[0] != len(self.reference):
            raise ValueError(
                f"{targets.shape[0]} targets for {len(self.reference)} reference tiles"
            )
        settings = replace(self.settings, seed=self.settings.seed + server_round)
        # An epoch is one pass over the reference set; archive batches are cycled alongside.
        steps = math.ceil(len(self.reference) / settings.batch_size)
        return fit(
            self.model,
            settings,
            self.archive.x,
            self.archive.y,
            self.reference,
            torch.from_numpy(targets),
            temperature=self.temperature,
            steps_per_epoch=steps,
        )

    def evaluate(self) -> float:
        return accuracy(self.model, self.test.x, self.test.y)
