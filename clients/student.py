"""One client's round: distil the local student towards the received targets, then predict.

Framework-free: takes tensors and arrays, returns soft predictions and metrics. The only
array that leaves is the prediction on exactly the requested reference indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from common.federation import Split
from common.training import TrainSettings, accuracy, fit, predict_proba


@dataclass(frozen=True)
class LocalResult:
    probs: np.ndarray  # (len(requested), C)
    num_examples: int
    train_loss: float
    local_accuracy: float


def local_round(
    student: nn.Module,
    train: Split,
    holdout: Split,
    reference: torch.Tensor,
    targets: np.ndarray,
    settings: TrainSettings,
    temperature: float,
    kd_weight: float,
) -> LocalResult:
    """CE on the private shard + kd_weight * T^2 KL(targets || student) on the reference tiles."""
    if len(reference) != len(targets):
        raise ValueError(f"{len(reference)} reference tiles but {len(targets)} targets")
    # The reference targets set the number of steps; the private shard (often a few dozen
    # tiles of one or two classes) is seen once per epoch, not once per step's full batch.
    steps = max(1, math.ceil(max(len(reference), len(train)) / settings.batch_size))
    loss = fit(
        student,
        settings,
        train.x,
        train.y,
        reference,
        torch.from_numpy(targets),
        temperature=temperature,
        kd_weight=kd_weight,
        hard_batch_size=max(1, math.ceil(len(train) / steps)),
    )
    probs = predict_proba(student, reference)
    return LocalResult(
        probs=probs,
        num_examples=len(train),
        train_loss=loss,
        local_accuracy=accuracy(student, holdout.x, holdout.y) if len(holdout) else float("nan"),
    )
