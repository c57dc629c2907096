"""Students pre-installed on every client before the federation starts.

A satellite is launched, and a drone or a ground station commissioned, with a student the
ground segment trained on its archive (cross-entropy on the labelled archive, distillation
towards the teacher on the public reference tiles). Clients then improve it in the rounds.
The FedAvg baseline starts from exactly the same model, so both methods use the same data.
In simulation the students are cached on disk, keyed by the recipe, and each simulated client
loads the one for its architecture; an agent loads its student file.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from common.config import RunConfig
from common.federation import Federation
from common.model_cache import load_or_train
from common.models import build_model
from common.preinstalled import cache_name, recipe, shares_global
from common.teacher_recipe import student_settings
from common.training import accuracy, epochs_text, fit
from server.global_student import GlobalStudent

log = logging.getLogger(__name__)


def preinstall(
    cfg: RunConfig,
    fed: Federation,
    arch: str,
    teacher_probs: np.ndarray,
    *,
    progress: bool = False,
) -> float:
    """Train (or find cached) the pre-installed ``arch`` student; return its test accuracy.

    ``progress``: show a bar over its epochs (a cold training takes a minute or two). The
    student of the global student's architecture is the global student's pre-training
    (:func:`common.preinstalled.shares_global`): trained once for both."""
    if shares_global(cfg, arch):
        score = GlobalStudent(fed, cfg).pretrain(teacher_probs, progress=progress)
        log.info("pre-installed %s student (the global student's pre-training): %.4f", arch, score)
        return score
    settings = student_settings(cfg, cfg.preinstall_epochs)
    archive = fed.split(fed.partition.archive)
    reference = fed.reference_images(np.arange(len(fed.partition.reference)))
    roles = "/".join(r for r in cfg.role_cycle if cfg.arch_of(r) == arch) or arch
    phase = f"pre-installed {arch} student (what {roles} clients start from)"

    def train(model: nn.Module) -> None:
        start = time.perf_counter()
        fit(
            model,
            settings,
            archive.x,
            archive.y,
            reference,
            torch.from_numpy(teacher_probs),
            temperature=cfg.temperature,
            progress=phase if progress else None,
        )
        log.info("pre-installed %s student trained in %.0f s", arch, time.perf_counter() - start)

    def evaluate(m: nn.Module) -> float:
        test = fed.test_split()
        return accuracy(m, test.x, test.y)

    model = build_model(arch, fed.spec.num_bands, fed.num_classes, seed=cfg.seed)
    what = (
        f"the {arch} student that {roles} clients start from, on {len(archive):,} labelled "
        f"archive tiles and the teacher's soft labels on {len(reference):,} reference tiles "
        f"for {epochs_text(settings.epochs, settings.coarse_epochs)}"
    )
    _, score = load_or_train(
        cache_name(arch), model, fed, recipe(cfg, arch), train, evaluate, what=what
    )
    log.info("pre-installed %s student: test accuracy %.4f", arch, score)
    return score
