"""One pass of distillation towards soft targets on the reference tiles, paired with
cross-entropy on archive batches: the step the global student and the refined teacher share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from common.federation import Split
from common.training import TrainSettings, fit


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
    lr_at: Callable[[int], float] | None = None,
) -> float:
    """``settings.epochs`` times ``steps`` steps of distillation towards ``targets`` (one row
    per reference tile), each paired with a cross-entropy step on an archive batch; the
    learning rate follows ``schedule`` (offset, total), or ``lr_at`` of the global step.
    Returns the last epoch's mean loss."""
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
        lr_at=lr_at,
    )
