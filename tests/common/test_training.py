from __future__ import annotations

import itertools

import pytest
import torch

from common.models import build_model
from common.training import TrainSettings, fit, one_cycle, predict_proba, resumed_cycle


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


def test_resumed_cycle_is_the_planned_one_cycle_when_the_run_is_as_long_as_planned() -> None:
    for step in range(300):
        assert resumed_cycle(step, done=120, planned=300, total=300, peak=0.01) == one_cycle(
            step, 300, 0.01
        )
    # Nothing done before: a plain one-cycle over the whole run.
    assert resumed_cycle(7, done=0, planned=0, total=50, peak=0.01) == one_cycle(7, 50, 0.01)


def test_resumed_cycle_finishes_the_plan_over_a_longer_or_shorter_run() -> None:
    peak, done, planned = 0.01, 120, 300
    for total in (150, 300, 900):
        rates = [
            resumed_cycle(s, done=done, planned=planned, total=total, peak=peak)
            for s in range(total)
        ]
        # The done part is the plan's, whatever the length of the rest.
        assert rates[:done] == [one_cycle(s, planned, peak) for s in range(done)]
        tail = rates[done:]
        assert all(a >= b for a, b in itertools.pairwise(tail))  # cosine decay
        assert rates[-1] < 0.02 * peak  # annealed by the end of the run
        assert abs(rates[done] - one_cycle(done, planned, peak)) < 1e-12  # no jump


def test_fit_follows_lr_at() -> None:
    model = build_model("tiny", 3, 2, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _skewed(32)
    seen: list[int] = []

    def zero(step: int) -> float:
        seen.append(step)
        return 0.0  # AdamW at rate 0 leaves every weight where it is

    fit(model, TrainSettings(epochs=2, batch_size=16), x, y, schedule=(5, 100), lr_at=zero)
    assert seen == [5, 6, 7, 8]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fit_shows_a_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = _skewed(32)
    settings = TrainSettings(epochs=2, batch_size=16, augment=False)
    fit(build_model("tiny", 3, 2, seed=0), settings, x, y)
    assert capsys.readouterr().err == ""
    fit(build_model("tiny", 3, 2, seed=0), settings, x, y, progress="tiny (a test)")
    err = capsys.readouterr().err
    assert "tiny (a test): epoch 2/2" in err and "100%" in err and "loss " in err


def test_a_proximal_term_keeps_the_weights_near_where_they_started() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 16, 16), torch.randint(0, 4, (64,))
    drift = {}
    for mu in (0.0, 10.0):
        torch.manual_seed(1)
        model = build_model("tiny", 3, 4)
        start = [p.detach().clone() for p in model.parameters()]
        fit(model, TrainSettings(epochs=3, batch_size=16, learning_rate=0.01), x, y, proximal_mu=mu)
        drift[mu] = sum(
            float(((p.detach() - s) ** 2).sum())
            for p, s in zip(model.parameters(), start, strict=True)
        )
    assert drift[10.0] < drift[0.0]


def test_coarse_epochs_see_half_size_batches_and_the_rest_full_size() -> None:
    """Progressive resizing: the first ``coarse_epochs`` epochs at half resolution."""
    model = build_model("tiny", 3, 4, seed=0)
    sizes: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(tuple(args[0].shape[2:])))
    x, y = torch.randn(16, 3, 64, 64), torch.randint(0, 4, (16,))
    settings = TrainSettings(epochs=3, batch_size=8, seed=0, coarse_epochs=2)
    fit(model, settings, x, y)
    assert sizes == [(32, 32)] * 4 + [(64, 64)] * 2  # two steps an epoch
    assert "coarse_epochs" in settings.recipe()
    assert "coarse_epochs" not in TrainSettings().recipe()  # 0: the keys cached before
