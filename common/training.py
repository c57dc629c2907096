"""Train, distil, predict and evaluate loops on in-memory tensors (no framework code)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from common.losses import kd_loss


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 0
    freeze_bn: bool = False  # keep batch-norm statistics fixed (fine-tuning on skewed data)
    # Balanced softmax on the labelled part: add log(label prior) to the logits, so a shard
    # that holds two classes teaches what they look like without teaching that nothing else
    # exists (logit calibration against label skew, as in FedLC).
    logit_adjust: bool = False
    # Forward pass and loss under bfloat16 autocast (common/precision.py): faster on CPUs with
    # native bf16; weights, gradients and optimiser state stay float32.
    bf16: bool = False
    # Progressive resizing: the first ``coarse_epochs`` epochs see every batch at half the
    # resolution (2x2 average pooling, a quarter of the convolutions' work); the rest see it
    # at full resolution, so the model ends adapted to the tiles it will be given.
    coarse_epochs: int = 0

    def recipe(self) -> dict[str, int | float | bool]:
        """The settings as a cached model's recipe: every field, ``bf16`` only when set (so
        float32 models keep the keys they had before the field existed)."""
        fields = dict(self.__dict__)
        if not self.bf16:
            del fields["bf16"]
        if not self.coarse_epochs:
            del fields["coarse_epochs"]
        return fields


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and 90-degree rotations: overhead tiles have no canonical orientation."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    if k:
        x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.randint(0, 2, (1,), generator=generator)):
        x = torch.flip(x, dims=(3,))
    return x.contiguous(memory_format=torch.channels_last)


def one_cycle(step: float, total: int, peak: float, warmup: float = 0.15) -> float:
    """Learning rate at ``step`` of ``total``: linear warm-up from peak/25, then cosine to ~0."""
    total = max(1, total)
    rise = max(1, int(warmup * total))
    if step < rise:
        return peak / 25 + (peak - peak / 25) * step / rise
    progress = min(1.0, (step - rise) / max(1, total - rise))
    return peak / 1e4 + (peak - peak / 1e4) * 0.5 * (1.0 + math.cos(math.pi * progress))


def resumed_cycle(step: int, *, done: int, planned: int, total: int, peak: float) -> float:
    """Learning rate at ``step`` of a :func:`one_cycle` planned over ``planned`` steps whose
    first ``done`` steps ran as planned and whose rest is stretched (or squeezed) over steps
    ``done .. total``: a later phase finishes the cycle an earlier one started, however long
    it turns out to be. With ``total == planned`` this is exactly ``one_cycle(step, planned)``;
    with nothing done (or nothing left of the plan) it is ``one_cycle(step, total)``."""
    if done <= 0 or planned <= done:
        return one_cycle(step, total, peak)
    if step < done:
        return one_cycle(step, planned, peak)
    mapped = done + (step - done) * (planned - done) / max(1, total - done)
    return one_cycle(mapped, planned, peak)


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``steps`` index batches cycling through fresh permutations of ``range(n)``."""
    out: list[torch.Tensor] = []
    perm = torch.randperm(n, generator=generator)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > n and pos > 0:
            perm, pos = torch.randperm(n, generator=generator), 0
        out.append(perm[pos : pos + batch_size])
        pos += batch_size
    return out


def fit(
    model: nn.Module,
    settings: TrainSettings,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    x_soft: torch.Tensor | None = None,
    soft_targets: torch.Tensor | None = None,
    temperature: float = 2.0,
    kd_weight: float = 1.0,
    steps_per_epoch: int | None = None,
    schedule: tuple[int, int] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    hard_batch_size: int | None = None,
    lr_at: Callable[[int], float] | None = None,
    progress: str | None = None,
    proximal_mu: float = 0.0,
) -> float:
    """Cross-entropy on (x, y) plus ``kd_weight`` * T^2 KL towards ``soft_targets`` on ``x_soft``.

    Either part may be absent. Each step takes one batch from each present part; an epoch is
    as many steps as the larger part needs, unless ``steps_per_epoch`` says otherwise;
    ``hard_batch_size`` sets the labelled part's batch on its own (e.g. one pass over a small
    private shard per epoch while the soft part sets the number of steps).
    The learning rate follows :func:`one_cycle` over this call's steps, or, with
    ``schedule=(offset, total)``, over a longer run of which this call is steps
    ``offset .. offset + epochs * steps`` (training continued across rounds); ``lr_at``
    replaces :func:`one_cycle` by another rate per global step (e.g. :func:`resumed_cycle`).
    Pass the same ``optimizer`` to keep its moments across calls. ``progress``: show a tqdm
    bar on stderr, described as ``"<progress>: epoch e/E"`` (None: silent, as inside a
    ServerApp or a test). ``proximal_mu`` > 0 adds FedProx's ``mu / 2 * |w - w_0|^2`` towards
    the weights the call started from. Returns the mean loss of the last epoch.
    """
    has_ce = x is not None and y is not None and len(x) > 0
    has_kd = x_soft is not None and soft_targets is not None and len(x_soft) > 0
    if not (has_ce or has_kd):
        return float("nan")
    n_ce = len(x) if has_ce and x is not None else 0
    n_kd = len(x_soft) if has_kd and x_soft is not None else 0
    steps = steps_per_epoch or math.ceil(max(n_ce, n_kd) / settings.batch_size)
    ce_batch = hard_batch_size or settings.batch_size
    gen = torch.Generator().manual_seed(settings.seed)
    opt = optimizer or make_optimizer(model, settings)
    offset, total_steps = schedule or (0, steps * settings.epochs)
    rate = lr_at or (lambda step: one_cycle(step, total_steps, settings.learning_rate))
    log_prior: torch.Tensor | None = None
    global_step = offset
    model.train()
    if settings.freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    last = float("nan")
    with _progress_bar(progress, settings.epochs, steps) as bar:
        for epoch in range(settings.epochs):
            bar.set_description_str(f"{progress}: epoch {epoch + 1}/{settings.epochs}")
            ce_idx = _batches(n_ce, ce_batch, steps, gen) if has_ce else []
            kd_idx = _batches(n_kd, settings.batch_size, steps, gen) if has_kd else []
            total = 0.0
            for step in range(steps):
                # One forward pass over the labelled and the soft batch together, so batch-norm
                # statistics come from both (a client's labelled batch may hold a single class).
                parts: list[torch.Tensor] = []
                if has_ce and x is not None:
                    parts.append(x[ce_idx[step]])
                if has_kd and x_soft is not None:
                    parts.append(x_soft[kd_idx[step]])
                xb = torch.cat(parts) if len(parts) > 1 else parts[0]
                xb = augment_batch(xb, gen) if settings.augment else xb
                if epoch < settings.coarse_epochs:
                    xb = F.avg_pool2d(xb, 2)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.bf16):
                    logits = model(xb)
                logits = logits.float()  # the losses in float32
                loss = torch.zeros(())
                n_hard = 0
                if has_ce and y is not None:
                    n_hard = len(ce_idx[step])
                    hard = logits[:n_hard]
                    if settings.logit_adjust:
                        if log_prior is None:
                            counts = torch.bincount(y, minlength=hard.shape[1]).float() + 0.5
                            log_prior = torch.log(counts / counts.sum())
                        hard = hard + log_prior
                    loss = loss + F.cross_entropy(hard, y[ce_idx[step]])
                if has_kd and soft_targets is not None:
                    loss = loss + kd_weight * kd_loss(
                        logits[n_hard:], soft_targets[kd_idx[step]], temperature
                    )
                if anchor:
                    drift = sum(
                        ((p - a) ** 2).sum()
                        for p, a in zip(model.parameters(), anchor, strict=True)
                    )
                    loss = loss + proximal_mu / 2 * drift
                for group in opt.param_groups:
                    group["lr"] = rate(global_step)
                global_step += 1
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                bar.update()
            last = total / steps
            bar.set_postfix_str(f"loss {last:.3f}")
    return last


def epochs_text(n: int, coarse: int = 0) -> str:
    """``"1 epoch"``, ``"4 epochs"``, ``"4 epochs (the first 2 at half resolution)"``: for log
    lines that say how long a phase trains."""
    text = f"{n} epoch" if n == 1 else f"{n} epochs"
    return f"{text} (the first {coarse} at half resolution)" if coarse else text


def _progress_bar(description: str | None, epochs: int, steps: int) -> tqdm[None]:
    """A bar over a training phase's steps, described by epoch; disabled without a description."""
    return tqdm(
        total=epochs * steps,
        disable=description is None,
        bar_format="{desc} |{bar}| {percentage:3.0f}% [{elapsed}<{remaining}{postfix}]",
        dynamic_ncols=True,
    )


@torch.no_grad()
def predict_proba(
    model: nn.Module, x: torch.Tensor, batch_size: int = 256, *, bf16: bool = False
) -> np.ndarray:
    """Class probabilities (n, C) as float32. ``bf16``: the forward pass under bfloat16
    autocast, as the training loops where the CPU has it (about 2x faster here; the softmax in
    float32; not bit-equal to float32: common/precision.py says by how much)."""
    model.eval()
    parts = []
    for i in range(0, len(x), batch_size):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x[i : i + batch_size])
        parts.append(F.softmax(logits.float(), dim=1))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(parts).numpy().astype(np.float32)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, bf16: bool = False) -> float:
    if len(y) == 0:
        return float("nan")
    probs = predict_proba(model, x, bf16=bf16)
    return float((probs.argmax(axis=1) == y.numpy()).mean())
