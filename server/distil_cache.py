"""A benchmark's cache of the global student's round updates, keyed by all they depend on.

``bench distill`` runs the same global student through several federations whose server side
can coincide: (d) and (e) differ only in the clients' own students, so with class statistics
(computed in the shared tiny backbone's features) they send the global student the same
targets in every round; and where no client's statistics move any class, (d)'s targets are the
teacher's soft labels, which is all the no-client control distils towards. A round's update
is deterministic in its inputs, so the second run that reaches a round with the same inputs
loads the result instead of computing it again.

The key is a SHA-256 of everything the update depends on: the student's weights and buffers,
the optimiser's state, the targets, the round and schedule, the training settings and the
archive and reference tensors. Inputs that differ in one bit are another entry, never a stale
one. The folder belongs to one benchmark invocation (``bench distill`` empties it first), so
a code change between invocations cannot return an old result.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write
from common.digest import value_digest

log = logging.getLogger(__name__)


class DistilCache:
    """Round updates of the global student in ``folder``, one file per key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0

    def key(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        targets: np.ndarray,
        context: Mapping[str, Any],
    ) -> str:
        state = (model.state_dict(), optimizer.state_dict(), targets, dict(context))
        return value_digest(*state)[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"round-{key}.pt"

    def load(self, key: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> float | None:
        """The cached update's loss, with its weights and optimiser state loaded into
        ``model`` and ``optimizer``; None if there is none (or it is unreadable)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, weights_only=True)
            model.load_state_dict(entry["model"])
            optimizer.load_state_dict(entry["optimizer"])
            loss = float(entry["loss"])
        except (
            OSError,
            RuntimeError,
            KeyError,
            TypeError,
            ValueError,
            pickle.UnpicklingError,
        ) as exc:
            log.warning("distil cache entry %s unreadable (%s): computing the round", path, exc)
            return None
        self.hits += 1
        return loss

    def save(
        self, key: str, model: nn.Module, optimizer: torch.optim.Optimizer, loss: float
    ) -> None:
        entry = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "loss": loss}
        atomic_write(self.path(key), lambda fh: torch.save(entry, fh))
