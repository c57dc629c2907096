from __future__ import annotations

import torch

from common.models import build_model
from common.training import TrainSettings, fit, predict_proba


def _skewed(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 16, 16, generator=g)
    y = torch.zeros(n, dtype=torch.long)
    y[: n // 8] = 1  # a shard that is 7/8 class 0 (and pure noise)
    return x, y


def test_frozen_batch_norm_keeps_the_running_statistics() -> None:
    model = build_model("tiny", 3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    x, y = _skewed()
    fit(model, TrainSettings(epochs=1, batch_size=16, freeze_bn=True, augment=False), x, y)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    fit(model, TrainSettings(epochs=1, batch_size=16, augment=False), x, y)
    assert not all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_logit_adjustment_removes_the_shards_label_prior() -> None:
    _, y = _skewed()
    x = torch.zeros(len(y), 3, 16, 16)  # identical tiles: only the label prior can be learnt

    def mean_prob_of_majority(adjust: bool) -> float:
        torch.manual_seed(0)
        model = build_model("tiny", 3, 2)
        settings = TrainSettings(
            epochs=30, batch_size=16, learning_rate=0.05, logit_adjust=adjust, augment=False
        )
        fit(model, settings, x, y)
        return float(predict_proba(model, x)[:, 0].mean())

    # Plain cross-entropy learns the 7:1 prior; balanced softmax stays near even odds.
    assert mean_prob_of_majority(False) > 0.75
    assert abs(mean_prob_of_majority(True) - 0.5) < 0.15
