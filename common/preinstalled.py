"""Where the students pre-installed on clients live (a cache keyed by their recipe).

The ground segment trains them (``server.preinstall``; ``skydistill preinstall`` copies them
out for edge nodes); simulated clients and agents load them here, from ``SKYDISTILL_CACHE``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from common.config import RunConfig
from common.errors import ConfigError
from common.federation import Federation
from common.model_cache import cache_path, load_cached
from common.models import build_model
from common.teacher_recipe import teacher_key


def recipe(cfg: RunConfig, arch: str) -> dict[str, Any]:
    return {
        "arch": arch,
        "epochs": cfg.preinstall_epochs,
        "learning_rate": cfg.learning_rate,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "temperature": cfg.temperature,
        "teacher": teacher_key(cfg),
    }


def cache_name(arch: str) -> str:
    return f"preinstalled-{arch}"


def preinstalled_student(cfg: RunConfig, fed: Federation, arch: str) -> nn.Module:
    """The pre-installed ``arch`` student, as the ground segment prepared it."""
    model = build_model(arch, fed.spec.num_bands, fed.num_classes)
    try:
        loaded = load_cached(cache_name(arch), model, fed, recipe(cfg, arch))
    except (IndexError, ValueError, KeyError, TypeError):  # torch.load on arbitrary bytes
        loaded = False
    if not loaded:
        path = cache_path(cache_name(arch), fed, recipe(cfg, arch))
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
