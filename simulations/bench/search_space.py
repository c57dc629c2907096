"""The points the FedAvg-family search of ``bench distill`` tries (plain data).

FedAvg's search covers the client settings (optimiser, rate, batch-norm handling, local
epochs); FedProx and FedAdam then search their own knob on the client settings FedAvg chose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class SearchPoint:
    optimizer: str
    learning_rate: float
    batch_norm: str
    local_epochs: int = 1
    strategy: str = "FedAvg"
    proximal_mu: float = 0.0  # FedProx only
    server_eta: float = 0.0  # FedAdam only

    def overrides(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "fedavg-strategy": self.strategy,
            "fedavg-optimizer": self.optimizer,
            "fedavg-lr": self.learning_rate,
            "fedavg-bn": self.batch_norm,
            "fedavg-epochs": self.local_epochs,
        }
        if self.strategy == "FedProx":
            values["fedprox-mu"] = self.proximal_mu
        if self.strategy == "FedAdam":
            values["fedadam-eta"] = self.server_eta
        return values

    def with_strategy(self, strategy: str, value: float) -> SearchPoint:
        """This point's client settings under FedProx (``value`` = mu) or FedAdam (eta)."""
        if strategy == "FedProx":
            return replace(self, strategy=strategy, proximal_mu=value)
        return replace(self, strategy=strategy, server_eta=value)


# Small on purpose (each point is a Flower run over every round), wide enough to find a
# stable setting under label skew: two Adam rates with frozen batch-norm statistics, one and
# three local epochs. Dropped after they were never chosen in four 30-round searches (alpha
# 0.1 twice, alpha 0.5, the 3:0.05 ground gap; docs/distillation.md): Adam 1e-4 with trained
# statistics (65.6-80.7 %, never first) and momentum SGD 1e-3 with trained statistics
# (65.2-71.4 %, last every time), each a Flower run over every round; and,
# before them, SGD 1e-3 with frozen statistics and three epochs (51-61 %).
SEARCH: tuple[SearchPoint, ...] = (
    SearchPoint("adam", 3e-4, "frozen"),
    SearchPoint("adam", 1e-4, "frozen"),
    SearchPoint("adam", 1e-4, "frozen", local_epochs=3),
)
# FedProx and FedAdam search their own knob on FedAvg's chosen client settings: the proximal
# weight mu (Li et al. 2020 search 0.001-1), and the server rate eta (Reddi et al. 2021; a
# pre-trained start wants the low end, with Flower's tau = 1e-3).
FAMILY: dict[str, tuple[float, ...]] = {"FedProx": (0.01, 0.1), "FedAdam": (1e-3, 1e-2)}
