"""What ``bench distill`` measures of each method: its entry in the report, every client's
deployable model on the common test set and on the client's own held-out split, and the
traffic and client cost of a federated run (read from its ``report.json``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from common.config import RunConfig
from common.digest import value_digest
from common.federation import Split
from common.training import accuracy


@dataclass(frozen=True)
class ClientScores:
    mean: float
    local_mean: float
    by_role: dict[str, float]
    local_by_role: dict[str, float]


def method_entry(
    final: float,
    *,
    rounds: list[float],
    params: dict[str, int],
    seconds: float,
    clients: ClientScores | None = None,
    bytes_total: int = 0,
    client_rounds: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """One method's entry under ``methods`` in ``distill.json``."""
    return {
        "final_accuracy": final,
        "client_accuracy_mean": clients.mean if clients else None,
        "client_local_accuracy_mean": clients.local_mean if clients else None,
        "client_accuracy_by_role": clients.by_role if clients else {},
        "params": params,
        "bytes_per_client_round": bytes_total / client_rounds if client_rounds else 0,
        "bytes_total": bytes_total,
        "seconds": seconds,
        "rounds": rounds,
        **extra,
    }


def score_clients(
    cfg: RunConfig,
    test: Split,
    model_of: Callable[[int, str], nn.Module],
    holdouts: list[Split],
) -> ClientScores:
    """Each client's deployable model on the common test set and on its own held-out split."""
    common: dict[str, list[float]] = {}
    local: dict[str, list[float]] = {}
    cache: dict[str, float] = {}
    for k in range(cfg.num_clients):
        role = cfg.role_of(k)
        model = model_of(k, role)
        # Scored once per distinct model: a shared one (FedAvg, never-trained clients), and
        # students with equal weights (in statistics mode a client deploys its pre-installed
        # backbone with the head of its last round: a round's clients deploy one model).
        key = model_digest(model)
        if key not in cache:
            cache[key] = accuracy(model, test.x, test.y)
        common.setdefault(role, []).append(cache[key])
        if len(holdouts[k]):
            local.setdefault(role, []).append(accuracy(model, holdouts[k].x, holdouts[k].y))
    every = [a for v in common.values() for a in v]
    every_local = [a for v in local.values() for a in v]
    return ClientScores(
        mean=float(np.mean(every)),
        local_mean=float(np.mean(every_local)) if every_local else math.nan,
        by_role={r: float(np.mean(v)) for r, v in sorted(common.items())},
        local_by_role={r: float(np.mean(v)) for r, v in sorted(local.items())},
    )


def model_digest(model: nn.Module) -> str:
    """What identifies a model's function: its class and the bytes of its state (weights and
    buffers, in order)."""
    return value_digest(type(model).__qualname__, model.state_dict())


def pooled_accuracy(model: nn.Module, splits: list[Split]) -> float:
    """``model``'s accuracy on the non-empty ``splits`` pooled."""
    xs = [s.x for s in splits if len(s)]
    ys = [s.y for s in splits if len(s)]
    return accuracy(model, torch.cat(xs), torch.cat(ys))


def round_accuracies(report: dict[str, Any]) -> list[float]:
    return [float(r["global_accuracy"]) for r in report["rounds"]]


def client_cost(report: dict[str, Any]) -> dict[str, float]:
    """Training sample-steps and seconds per client-round (per valid reply)."""
    rounds = report["rounds"]
    replies = sum(int(r.get("clients_ok", 0)) for r in rounds)
    samples = sum(int(r.get("client_train_samples", 0)) for r in rounds)
    seconds = sum(float(r.get("client_seconds", 0.0)) for r in rounds)
    return {
        "client_steps_per_round": samples / replies if replies else 0.0,
        "client_seconds_per_round": seconds / replies if replies else 0.0,
    }


def traffic(report: dict[str, Any]) -> tuple[int, int]:
    """(bytes up and down, client-rounds) of a federated run."""
    rounds = report["rounds"]
    total = sum(int(r["bytes_up"]) + int(r["bytes_down"]) for r in rounds)
    return total, sum(int(r["clients_selected"]) for r in rounds)
