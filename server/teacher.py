"""The ground segment's teacher: trained on the archive once, then loaded from a cache."""

from __future__ import annotations

import logging
import time

from torch import nn

from common.config import RunConfig
from common.federation import Federation
from common.model_cache import load_or_train
from common.models import build_model, count_parameters
from common.training import TrainSettings, accuracy, fit

log = logging.getLogger(__name__)

TEACHER_ARCH = "teacher"


def load_or_train_teacher(cfg: RunConfig, fed: Federation) -> tuple[nn.Module, float]:
    """The trained teacher and its test accuracy; trained on the archive only if not cached."""
    settings = TrainSettings(
        epochs=cfg.teacher_epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        seed=cfg.seed,
    )

    def train(model: nn.Module) -> None:
        archive = fed.split(fed.partition.archive)
        log.info(
            "training the teacher (%d parameters) on %d archive tiles for %d epochs",
            count_parameters(model),
            len(archive),
            cfg.teacher_epochs,
        )
        start = time.perf_counter()
        fit(model, settings, archive.x, archive.y)
        log.info("teacher trained in %.0f s", time.perf_counter() - start)

    model = build_model(TEACHER_ARCH, fed.spec.num_bands, fed.num_classes)
    recipe = {"arch": TEACHER_ARCH, **settings.__dict__}
    test = fed.test_split()
    return load_or_train(
        "teacher", model, fed, recipe, train, lambda m: accuracy(m, test.x, test.y)
    )
