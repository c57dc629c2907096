"""The FedAvg baseline's client side: train the received weights on the private shard.

Only used when the run config says ``method = "fedavg"``; weights then travel both ways,
which is the cost federated distillation is compared against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message
from torch import nn

from clients.instructions import band_stats
from common import keys
from common.dataset import BandStats
from common.errors import ReplyError
from common.federation import Split
from common.training import TrainSettings, fit


@dataclass(frozen=True)
class FedAvgInstruction:
    server_round: int
    arrays: ArrayRecord
    optimizer: str
    learning_rate: float
    epochs: int
    freeze_bn: bool
    stats: BandStats
    proximal_mu: float = 0.0  # FedProx's proximal weight (0: plain FedAvg)


def parse_fedavg(msg: Message) -> FedAvgInstruction:
    arrays, config = msg.content.get(keys.FEDAVG_ARRAYS), msg.content.get(keys.TRAIN_CONFIG)
    if not isinstance(arrays, ArrayRecord) or not isinstance(config, ConfigRecord):
        raise ReplyError(
            "keys",
            f"FedAvg train message needs {keys.FEDAVG_ARRAYS!r} arrays and "
            f"{keys.TRAIN_CONFIG!r} config",
        )
    try:
        return FedAvgInstruction(
            server_round=int(config[keys.SERVER_ROUND]),  # type: ignore[arg-type]
            arrays=arrays,
            optimizer=str(config[keys.FEDAVG_OPTIMIZER]),
            learning_rate=float(config[keys.FEDAVG_LR]),  # type: ignore[arg-type]
            epochs=int(config[keys.FEDAVG_EPOCHS]),  # type: ignore[arg-type]
            freeze_bn=bool(config[keys.FREEZE_BN]),
            stats=band_stats(config),
            proximal_mu=float(config.get(keys.PROXIMAL_MU, 0.0)),  # type: ignore[arg-type]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplyError("config", f"FedAvg train message is incomplete: {exc}") from exc


def local_fedavg(model: nn.Module, task: FedAvgInstruction, train: Split, seed: int) -> float:
    """Local epochs of cross-entropy on the shard (plus FedProx's proximal term towards the
    received weights when the server sends ``proximal-mu``); returns the last epoch's mean loss."""
    model.load_state_dict(task.arrays.to_torch_state_dict())
    settings = TrainSettings(
        epochs=task.epochs,
        batch_size=32,
        learning_rate=task.learning_rate,
        seed=seed,
        freeze_bn=task.freeze_bn,
    )
    optimizer: torch.optim.Optimizer | None = None
    if task.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=task.learning_rate, momentum=0.9)
    return fit(model, settings, train.x, train.y, optimizer=optimizer, proximal_mu=task.proximal_mu)
