from __future__ import annotations

import math

import pytest
import torch

from common.losses import kd_loss, soften


def test_kd_loss_matches_hand_computed_value() -> None:
    # Two classes, T = 2. Student logits (0, 0) -> q = (0.5, 0.5) at any temperature.
    # Target p = (0.8, 0.2) softened at T=2: p^(1/2) normalised = (2/3, 1/3) exactly.
    # KL(p_T || q_T) = 2/3 ln(4/3) + 1/3 ln(2/3); the loss is T^2 = 4 times that.
    logits = torch.zeros(1, 2)
    target = torch.tensor([[0.8, 0.2]])
    expected = 4 * (2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3))
    assert kd_loss(logits, target, 2.0).item() == pytest.approx(expected, rel=1e-5)


def test_soften_is_temperature_scaling_of_logits() -> None:
    z = torch.tensor([[2.0, -1.0, 0.5]])
    p = torch.softmax(z, 1)
    torch.testing.assert_close(soften(p, 3.0), torch.softmax(z / 3.0, 1))


def test_kd_loss_is_zero_for_matching_distributions_and_positive_otherwise() -> None:
    z = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    assert kd_loss(z, torch.softmax(z, 1), 4.0).item() == pytest.approx(0.0, abs=1e-5)
    assert kd_loss(z, torch.softmax(-z, 1), 4.0).item() > 0.1


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ"):
        kd_loss(torch.zeros(2, 3), torch.full((2, 4), 0.25), 1.0)
