"""Where the students pre-installed on clients live (a cache keyed by their recipe).

The ground segment trains them (``server.preinstall``; ``skydistill preinstall`` copies them
out for edge nodes); simulated clients and agents load them here, from ``SKYDISTILL_CACHE``.

The pre-installed student of the global student's architecture *is* the global student's
pre-training (:func:`shares_global`): one architecture on the same archive, teacher and
recipe, trained once (it used to be trained twice, to the same accuracy: 0.849 and 0.848 on
the default split). Its cache entry is the global student's (:func:`cache_entry`).
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from common.config import RunConfig
from common.errors import ConfigError
from common.federation import Federation
from common.model_cache import cache_path, load_cached
from common.models import build_model
from common.teacher_recipe import ground_settings, student_settings, teacher_key
from common.training import TrainSettings

# The round count the global student's pre-training plans its share of the learning-rate
# cycle for: the default num-rounds (server/global_student.py), so the pre-trained weights,
# and their cache key, do not depend on ``num-rounds``.
PLANNED_ROUNDS = 10


def shares_global(cfg: RunConfig, arch: str) -> bool:
    """Whether the pre-installed ``arch`` student is the global student's pre-training."""
    return arch == cfg.global_student and cfg.global_pretrain_epochs > 0


def global_settings(cfg: RunConfig) -> TrainSettings:
    """The global student's training settings (one epoch a round: ``server-epochs``)."""
    return ground_settings(cfg, cfg.server_epochs)


def global_pretrain_settings(cfg: RunConfig) -> TrainSettings:
    """The global student's pre-training settings: ``global-pretrain-epochs``, the first
    ``student-coarse-fraction`` of them at half resolution (the rounds' passes are full size)."""
    return student_settings(cfg, cfg.global_pretrain_epochs)


def global_schedule(cfg: RunConfig, fed: Federation) -> tuple[int, int, int]:
    """(pre-training steps, steps a round, steps of the planned cycle): pre-training runs the
    first part of one learning-rate cycle planned for PLANNED_ROUNDS rounds."""
    bs = cfg.batch_size
    archive, reference = len(fed.partition.archive), len(fed.partition.reference)
    pretrain = cfg.global_pretrain_epochs * math.ceil(max(archive, reference) / bs)
    per_round = cfg.server_epochs * math.ceil(reference / bs)
    return pretrain, per_round, pretrain + PLANNED_ROUNDS * per_round


def global_recipe(cfg: RunConfig, fed: Federation) -> dict[str, Any]:
    """What, besides the data (:func:`common.model_cache.recipe_key`), makes the global
    student's pre-trained weights: no round count (pre-training plans for PLANNED_ROUNDS)."""
    pretrain, _, planned = global_schedule(cfg, fed)
    return {
        "arch": cfg.global_student,
        "temperature": cfg.temperature,
        "teacher": teacher_key(cfg),
        "schedule": [pretrain, planned],
        **global_pretrain_settings(cfg).recipe(),
    }


def cache_entry(cfg: RunConfig, fed: Federation, arch: str) -> tuple[str, dict[str, Any]]:
    """The cache name and recipe of the pre-installed ``arch`` student: the global student's
    pre-training for its architecture (:func:`shares_global`), else its own."""
    if shares_global(cfg, arch):
        return f"global-{arch}", global_recipe(cfg, fed)
    return cache_name(arch), recipe(cfg, arch)


def recipe(cfg: RunConfig, arch: str) -> dict[str, Any]:
    """The recipe of a pre-installed student trained on its own (``preinstall-epochs``)."""
    settings = student_settings(cfg, cfg.preinstall_epochs)  # what server/preinstall.py trains
    return {
        "arch": arch,
        "epochs": cfg.preinstall_epochs,
        "learning_rate": cfg.learning_rate,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "temperature": cfg.temperature,
        "teacher": teacher_key(cfg),
        **({"precision": "bf16"} if settings.bf16 else {}),
        # absent when 0: the keys cached before the setting existed
        **({"coarse_epochs": settings.coarse_epochs} if settings.coarse_epochs else {}),
    }


def cache_name(arch: str) -> str:
    return f"preinstalled-{arch}"


def preinstalled_student(cfg: RunConfig, fed: Federation, arch: str) -> nn.Module:
    """The pre-installed ``arch`` student, as the ground segment prepared it."""
    model = build_model(arch, fed.spec.num_bands, fed.num_classes)
    name, entry = cache_entry(cfg, fed, arch)
    try:
        loaded = load_cached(name, model, fed, entry)
    except (IndexError, ValueError, KeyError, TypeError):  # torch.load on arbitrary bytes
        loaded = False
    if not loaded:
        path = cache_path(name, fed, entry)
        found = (
            f"the pre-installed {arch!r} student {path} is unreadable (truncated, or of "
            "another architecture)"
            if path.exists()
            else f"no pre-installed {arch!r} student for this run config in {path.parent} "
            f"(expected file {path.name})"
        )
        raise ConfigError(
            f"{found}: build it at the ground with `skydistill preinstall --run-config "
            "RUN.toml` (the run config of this deployment) and copy it to this node's "
            "SKYDISTILL_CACHE (or set client-init='scratch')"
        )
    return model
