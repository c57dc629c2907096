"""Distillation losses: temperature-scaled KL with the T^2 factor (common/training.py adds the
cross-entropy term)."""

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
