"""Distillation losses: temperature-scaled KL with the T^2 factor, mixed with cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Re-temper probabilities: softmax(log(p) / T), equal to softmax(z / T) when p = softmax(z)."""
    return F.softmax(torch.log(probs.clamp_min(_EPS)) / temperature, dim=-1)


def kd_loss(
    student_logits: torch.Tensor, target_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T^2 * KL(softened targets || softened student), averaged over the batch.

    The T^2 factor keeps the gradient scale of the soft term independent of T (Hinton et al.).
    """
    if student_logits.shape != target_probs.shape:
        raise ValueError(
            f"logits {tuple(student_logits.shape)} and targets {tuple(target_probs.shape)} differ"
        )
    target = soften(target_probs, temperature)
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    kl = F.kl_div(log_student, target, reduction="batchmean")
    return kl * temperature**2


def mixed_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    target_probs: torch.Tensor,
    temperature: float,
    kd_weight: float,
) -> torch.Tensor:
    """(1 - w) * CE(labels) + w * T^2 * KL(targets || student), on the same batch."""
    if not 0.0 <= kd_weight <= 1.0:
        raise ValueError(f"kd_weight must be in [0, 1], got {kd_weight}")
    ce = F.cross_entropy(student_logits, labels)
    return (1.0 - kd_weight) * ce + kd_weight * kd_loss(student_logits, target_probs, temperature)
