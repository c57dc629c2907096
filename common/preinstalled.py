"""Where the students pre-installed on clients live (a cache keyed by their recipe).

The ground segment trains them (``server.preinstall``); simulated clients load them here.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from common.config import RunConfig
from common.errors import ConfigError
from common.federation import Federation
from common.model_cache import load_cached
from common.models import build_model


def recipe(cfg: RunConfig, arch: str) -> dict[str, Any]:
    return {
        "arch": arch,
        "epochs": cfg.preinstall_epochs,
        "learning_rate": cfg.learning_rate,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "temperature": cfg.temperature,
        "teacher": [cfg.teacher_epochs, cfg.learning_rate, cfg.batch_size, cfg.seed],
    }


def cache_name(arch: str) -> str:
    return f"preinstalled-{arch}"


def preinstalled_student(cfg: RunConfig, fed: Federation, arch: str) -> nn.Module:
    """The pre-installed ``arch`` student, as the ground segment prepared it."""
    model = build_model(arch, fed.spec.num_bands, fed.num_classes)
    if not load_cached(cache_name(arch), model, fed, recipe(cfg, arch)):
        raise ConfigError(
            f"no pre-installed {arch!r} student for this run config: the ServerApp prepares it "
            "before the first round (or set client-init='scratch')"
        )
    return model
