"""The FedAvg-family baseline: Flower's own ``FedAvg``, ``FedProx`` or ``FedAdam`` strategy
on one student architecture (run config ``fedavg-strategy``).

Every client trains the same student and sends its weights back; the server averages them
(FedProx: the clients add a proximal term towards the received weights; FedAdam: the server
takes an Adam step along the clients' mean update). It starts from the same pre-installed
student the distillation clients start from (trained at the ground segment on the archive),
so every method uses the same labelled data. The subclasses only count what travelled, so the
report has the same fields as a distillation run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from common import keys
from common.atomic import atomic_write
from common.config import RunConfig
from common.preinstalled import preinstalled_student
from common.training import accuracy
from server import metrics
from server.ground import GroundSegment
from server.history import History, RoundRecord
from server.timings import Laps, Sent, close, mark_sent, receiving

log = logging.getLogger(__name__)

GLOBAL_MODEL_FILE = "global-model.pt"


# Batch-norm buffers are statistics, not parameters: FedAdam averages them, never steps them
# (an Adam step can drive a running variance below zero).
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


class Counting(FedAvg):
    """Records clients and bytes per round in a :class:`RoundRecord`; mixed into each of
    Flower's strategies below (``class CountingFedProx(Counting, FedProx)``).

    After each ``configure_train`` and ``aggregate_train``, ``current`` holds the round's
    record (clients selected, ok and failed, bytes down and up, the clients' samples and
    seconds, the phases timed so far: send, clients, receive, aggregate) and
    ``round_started`` the ``time.perf_counter()`` of its start.

    Parameters
    ----------
    **kwargs
        The arguments of the Flower strategy it is mixed into, unchanged (for FedAvg:
        ``fraction_train``, ``fraction_evaluate``, ``min_train_nodes``,
        ``min_available_nodes``, ``weighted_by_key``, ...; :func:`fedavg_strategy` sets them
        from the run config).
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.current: RoundRecord | None = None
        self.round_started = 0.0
        self._sent = Sent(0.0, 0.0)  # when the round's messages went to Flower

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.round_started = time.perf_counter()
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.current = RoundRecord(
            round=server_round,
            clients_selected=len(messages),
            bytes_down=arrays.count_bytes() * len(messages),
        )
        self._sent = mark_sent(self.current.phase_seconds, self.round_started)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Count the replies, then Flower's aggregation; timed as FedKD's (server/timings.py):
        ``clients`` and ``receive`` until the replies are in, ``aggregate`` after."""
        replies = list(replies)
        record = self.current or RoundRecord(round=server_round)
        with receiving(record.phase_seconds, self._sent, replies):
            ok = [m for m in replies if not m.has_error()]
            record.clients_ok = len(ok)
            record.clients_failed = record.clients_selected - len(ok)
            record.bytes_up = sum(
                rec.count_bytes() for m in ok for rec in m.content.array_records.values()
            )
            for m in ok:
                reply_metrics = m.content.get(keys.METRICS)
                if isinstance(reply_metrics, MetricRecord):
                    samples = reply_metrics.get(keys.TRAIN_SAMPLES, 0)
                    seconds = reply_metrics.get(keys.CLIENT_SECONDS, 0.0)
                    own = float(seconds) if isinstance(seconds, int | float) else 0.0
                    record.client_train_samples += samples if isinstance(samples, int) else 0
                    record.client_seconds += own
                    record.client_seconds_max = max(record.client_seconds_max, own)
            self.current = record
            return super().aggregate_train(server_round, replies)


class CountingFedAvg(Counting, FedAvg):
    """Flower's ``FedAvg``, counted.

    Parameters
    ----------
    **kwargs
        Flower's ``FedAvg`` arguments (``fraction_train``, ``fraction_evaluate``,
        ``min_train_nodes``, ``min_evaluate_nodes``, ``min_available_nodes``,
        ``weighted_by_key``, ``arrayrecord_key``, ``configrecord_key``, the metric
        aggregation functions), with Flower's defaults.
    """


class CountingFedProx(Counting, FedProx):
    """Flower's ``FedProx`` (it sends ``proximal-mu`` in the train config), counted.

    Parameters
    ----------
    **kwargs
        Flower's ``FedProx`` arguments: ``FedAvg``'s and ``proximal_mu`` (the weight of the
        clients' proximal term; run config ``fedprox-mu``).
    """


class CountingFedAdam(Counting, FedAdam):
    """Flower's ``FedAdam``, counted; batch-norm buffers take the clients' weighted mean, and
    every array keeps the dtype it was sent in (Flower's Adam step returns float64, which
    would double the bytes of the next round's download).

    Parameters
    ----------
    **kwargs
        Flower's ``FedAdam`` arguments: ``FedAvg``'s and ``eta`` (the server's Adam step
        size; run config ``fedadam-eta``), ``eta_l``, ``beta_1``, ``beta_2``, ``tau``.
    """

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        sent = dict(self.current_arrays or {})
        arrays, aggregated = super().aggregate_train(server_round, replies)
        if arrays is None:
            return arrays, aggregated
        adjusting = time.perf_counter()
        # the replies passed FedAvg's consistency checks: Flower's own weighted mean of them
        mean = aggregate_arrayrecords(
            [m.content for m in replies if not m.has_error()], self.weighted_by_key
        )
        values = {k: (mean if k.endswith(BUFFER_SUFFIXES) else arrays)[k].numpy() for k in arrays}
        out = ArrayRecord(
            {k: Array(np.asarray(v).astype(sent[k].dtype)) for k, v in values.items()}
        )
        if self.current is not None:  # part of the aggregation too
            phases = self.current.phase_seconds
            phases[keys.PHASE_AGGREGATE] += time.perf_counter() - adjusting
        return out, aggregated


def fedavg_strategy(cfg: RunConfig) -> Counting:
    """The counted Flower strategy that ``fedavg-strategy`` names."""
    common: dict[str, object] = {
        "fraction_train": cfg.fraction_train,
        "fraction_evaluate": 0.0,
        "min_train_nodes": cfg.min_train_clients,
        "min_available_nodes": cfg.min_train_clients,
        "weighted_by_key": keys.NUM_EXAMPLES,
    }
    if cfg.fedavg_strategy == "FedProx":
        return CountingFedProx(proximal_mu=cfg.fedprox_mu, **common)
    if cfg.fedavg_strategy == "FedAdam":
        return CountingFedAdam(eta=cfg.fedadam_eta, **common)
    return CountingFedAvg(**common)


def run_fedavg(grid: Grid, cfg: RunConfig, ground: GroundSegment, history: History) -> None:
    arch = cfg.student or "tiny"
    fed = ground.fed
    model = preinstalled_student(cfg, fed, arch)
    test = fed.test_split()
    history.start_accuracy = accuracy(model, test.x, test.y)
    strategy = fedavg_strategy(cfg)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        record = strategy.current
        if server_round == 0 or record is None:
            return None
        previous = history.rounds[-1].global_accuracy if history.rounds else None
        laps = Laps(record.phase_seconds)
        model.load_state_dict(arrays.to_torch_state_dict())
        record.global_accuracy = accuracy(model, test.x, test.y)
        laps.lap(keys.PHASE_EVALUATE)
        record.seconds = close(record.phase_seconds, strategy.round_started)
        history.add(record)
        metrics.observe_round(record, previous)
        return MetricRecord({"accuracy": record.global_accuracy})

    train_config = ConfigRecord(
        {
            keys.NORM_MEAN: list(fed.stats.mean),
            keys.NORM_STD: list(fed.stats.std),
            keys.FEDAVG_OPTIMIZER: cfg.fedavg_optimizer,
            keys.FEDAVG_LR: cfg.fedavg_lr,
            keys.FEDAVG_EPOCHS: cfg.fedavg_epochs,
            keys.FREEZE_BN: int(cfg.fedavg_bn == "frozen"),
        }
    )
    metrics.set_run_info(cfg.fedavg_strategy, "weighted-mean", "fp32-weights", cfg.dataset)
    log.info(
        "%s baseline: %s student, %s lr %g, %d local epochs, batch norm %s",
        cfg.fedavg_strategy,
        arch,
        cfg.fedavg_optimizer,
        cfg.fedavg_lr,
        cfg.fedavg_epochs,
        cfg.fedavg_bn,
    )
    history.clock.lap(keys.PHASE_SETUP)
    result = strategy.start(
        grid,
        ArrayRecord(model.state_dict()),
        num_rounds=cfg.num_rounds,
        timeout=cfg.round_timeout,
        train_config=train_config,
        evaluate_fn=evaluate,
    )
    history.clock.restart()  # the model's save is the start of the run's finish
    if cfg.out_dir:
        state = result.arrays.to_torch_state_dict()
        path = Path(cfg.out_dir) / GLOBAL_MODEL_FILE
        atomic_write(path, lambda fh: torch.save(state, fh))
