"""bench distill's scoring of every client's deployable model."""

from __future__ import annotations

import copy

import torch
from torch import nn

from common.config import RunConfig
from common.federation import Split
from common.models import build_model
from simulations.bench.measure import model_digest, score_clients


def _split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 4, (n,), generator=g))


def test_clients_deploying_equal_weights_are_scored_on_the_test_set_once() -> None:
    """Equal weights (separate objects) are one model to score; other weights are another;
    each client still gets its own held-out score."""
    cfg = RunConfig(num_clients=6)
    a = build_model("tiny", 3, 4, seed=0)
    b = build_model("tiny", 3, 4, seed=1)
    models: dict[int, nn.Module] = {k: copy.deepcopy(a if k < 4 else b) for k in range(6)}
    test = _split(20, 0)
    holdouts = [_split(5, 10 + k) for k in range(6)]
    scored: list[int] = []
    for m in models.values():
        m.register_forward_pre_hook(lambda mod, args: scored.append(len(args[0])))
    scores = score_clients(cfg, test, lambda k, _r: models[k], holdouts)
    assert sum(n for n in scored if n == 20) == 2 * 20  # the test set twice: a and b
    assert scored.count(5) == 6  # every client's own held-out split
    assert 0.0 <= scores.mean <= 1.0
    assert model_digest(models[0]) == model_digest(models[3]) != model_digest(models[4])
    with torch.no_grad():
        next(models[1].parameters()).add_(1.0)
    assert model_digest(models[1]) != model_digest(models[0])
