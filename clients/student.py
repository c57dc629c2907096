"""One client's round: distil the local student towards the received targets, then predict.

Framework-free: takes tensors and arrays, returns soft predictions and metrics. The only
array that leaves is the prediction on exactly the requested reference indices.

With ``digest_epochs`` the round ends, after the prediction, with distillation-only passes
over the received targets (FedMD's "digest" after its "revisit"): the reply still carries
what the private shard taught, while the student the client keeps and deploys ends on the
federation's knowledge instead of on a shard that may hold one or two classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
    train_samples: int = 0  # samples through a training step (forward and backward)


def local_round(
    student: nn.Module,
    train: Split,
    holdout: Split,
    reference: torch.Tensor,
    targets: np.ndarray,
    settings: TrainSettings,
    temperature: float,
    kd_weight: float,
    digest_epochs: int = 0,
) -> LocalResult:
    """CE on the private shard + kd_weight * T^2 KL(targets || student) on the reference tiles,
    predict, then ``digest_epochs`` passes of T^2 KL alone (the kept student)."""
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
    if digest_epochs > 0:
        fit(
            student,
            replace(settings, epochs=digest_epochs, seed=settings.seed + 1, logit_adjust=False),
            x_soft=reference,
            soft_targets=torch.from_numpy(targets),
            temperature=temperature,
        )
    hard = max(1, math.ceil(len(train) / steps))
    samples = settings.epochs * steps * (settings.batch_size + hard)
    samples += digest_epochs * math.ceil(len(reference) / settings.batch_size) * settings.batch_size
    return LocalResult(
        probs=probs,
        num_examples=len(train),
        train_loss=loss,
        train_samples=samples,
        local_accuracy=accuracy(student, holdout.x, holdout.y) if len(holdout) else float("nan"),
    )


def answer_round(
    student: nn.Module,
    head: tuple[np.ndarray, np.ndarray] | None,
    holdout: Split,
    reference: torch.Tensor,
) -> LocalResult:
    """Statistics mode: install the ground's head (if sent) on the frozen student, predict.

    No training step: what the shard teaches leaves as class statistics, and the model the
    client keeps is its pre-installed backbone with the head fitted on the federation's
    knowledge (server/heads.py)."""
    if head is not None:
        weight, bias = head
        layer = student.head
        if not isinstance(layer, nn.Linear) or tuple(layer.weight.shape) != weight.shape:
            raise ValueError(
                f"the ground's head {weight.shape} does not fit this student's "
                f"{tuple(layer.weight.shape) if isinstance(layer, nn.Linear) else type(layer)}"
            )
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))
    classes = student.head.out_features if isinstance(student.head, nn.Linear) else 0
    return LocalResult(
        # the ground asks for no tile in statistics mode (server/strategy.py)
        probs=predict_proba(student, reference) if len(reference) else np.zeros((0, classes)),
        num_examples=0,
        train_loss=float("nan"),
        local_accuracy=accuracy(student, holdout.x, holdout.y) if len(holdout) else float("nan"),
    )
