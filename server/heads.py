"""The heads the ground fits for each client architecture, on frozen pre-installed features.

A client's pre-installed student has a good backbone and an under-fit head (its four epochs of
pre-installation end before the linear layer has settled). With class statistics the ground
knows more than any client: it refits, for each architecture, only the head (650 parameters
for the tiny student) on the frozen features of its archive (cross-entropy) and of the
reference tiles (distillation towards the fused knowledge, which carries what the clients'
statistics taught). The head travels down in the train message (kilobytes), and the client
deploys its pre-installed backbone with it: what joining gives every client, whatever its
shard. docs/distillation.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from flwr.app import Array, ArrayRecord
from torch import nn

from common.class_stats import GroundFeatures
from common.digest import tensor_digest


def head_keys(arch: str) -> tuple[str, str]:
    return f"{arch}.weight", f"{arch}.bias"


class ArchHead:
    """One architecture's head, refit on its frozen features (archive with labels, reference)."""

    def __init__(self, model: nn.Module, feats: GroundFeatures) -> None:
        head = model.head
        if not isinstance(head, nn.Linear):
            raise TypeError("a student with a linear head is needed")
        z = feats.archive
        self.archive = torch.from_numpy(z.reshape(-1, z.shape[-1])).float()
        self.labels = torch.from_numpy(np.tile(feats.labels, z.shape[0]))
        self.reference = torch.from_numpy(feats.reference).float()
        self.weight0 = head.weight.detach().clone().float()
        self.bias0 = head.bias.detach().clone().float()

    def fit(
        self, targets: np.ndarray | None, *, epochs: int, lr: float, kd_weight: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Full-batch Adam from the pre-installed head: CE on the archive, plus ``kd_weight``
        times the cross-entropy towards ``targets`` on the reference tiles (if given)."""
        weight = self.weight0.clone().requires_grad_(True)
        bias = self.bias0.clone().requires_grad_(True)
        opt = torch.optim.Adam([weight, bias], lr=lr, weight_decay=1e-4)
        soft = None if targets is None else torch.from_numpy(np.asarray(targets)).float()
        with torch.enable_grad():
            for _ in range(epochs):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(self.archive @ weight.T + bias, self.labels)
                if soft is not None and kd_weight > 0:
                    logp = torch.log_softmax(self.reference @ weight.T + bias, dim=1)
                    loss = loss + kd_weight * -(soft * logp).sum(1).mean()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        return weight.detach().numpy(), bias.detach().numpy()


class DeployedHeads:
    """Per architecture: the head the ground fits and sends (``record``) each round."""

    def __init__(
        self,
        heads: dict[str, ArchHead],
        *,
        epochs: int = 200,
        lr: float = 0.01,
        kd_weight: float = 0.0,
    ) -> None:
        self.arch_heads = heads
        self.epochs = epochs
        self.lr = lr
        self.kd_weight = kd_weight
        self.current: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._fitted_for: str | None = None  # digest of the targets ``current`` was fit on

    def fit(self, targets: np.ndarray | None) -> None:
        """Refit every architecture's head towards ``targets`` (None: the archive alone).

        A fit starts from the pre-installed head and is deterministic, so targets equal to the
        last fit's give the heads already there: then nothing is recomputed. Statistics that
        move no class's fused targets (the archive already holds more evidence of every class
        they describe, ``statistics-fusion``) cost no refit; a refit is 200 full-batch epochs
        over the archive's eight views, seconds per architecture."""
        digest = "" if targets is None else tensor_digest(targets)
        if self.current and digest == self._fitted_for:
            return
        for arch, head in self.arch_heads.items():
            self.current[arch] = head.fit(
                targets, epochs=self.epochs, lr=self.lr, kd_weight=self.kd_weight
            )
        self._fitted_for = digest

    def record(self, archs: Iterable[str] | None = None) -> ArrayRecord:
        """The heads of ``archs`` (None: every architecture's), float16 on the wire. An
        architecture the run has no head for sends every head (the client picks its own)."""
        if not self.current:
            self.fit(None)
        wanted = set(self.current) if archs is None else set(archs)
        if not wanted <= set(self.current):
            wanted = set(self.current)
        arrays = {}
        for arch, (weight, bias) in sorted(self.current.items()):
            if arch not in wanted:
                continue
            kw, kb = head_keys(arch)
            arrays[kw] = Array(weight.astype(np.float16))
            arrays[kb] = Array(bias.astype(np.float16))
        return ArrayRecord(arrays)
