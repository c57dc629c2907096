"""The FedAvg-family baseline's strategies on crafted replies (real Flower messages)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from common import keys
from common.config import RunConfig
from common.models import build_model
from server.fedavg import CountingFedAdam, CountingFedAvg, CountingFedProx, fedavg_strategy
from tests.server.loopback import LoopbackGrid


def test_the_run_config_names_the_strategy() -> None:
    assert type(fedavg_strategy(RunConfig())) is CountingFedAvg
    prox = fedavg_strategy(RunConfig(fedavg_strategy="FedProx", fedprox_mu=0.3))
    assert isinstance(prox, CountingFedProx) and prox.proximal_mu == 0.3
    adam = fedavg_strategy(RunConfig(fedavg_strategy="FedAdam", fedadam_eta=0.02))
    assert isinstance(adam, CountingFedAdam) and adam.eta == 0.02


def _state(shift: float) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model("tiny", 3, 4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for v in state.values():
        if v.is_floating_point():
            v += shift
        else:
            v += int(shift * 10)
    return state


def test_fedprox_sends_mu_and_fedadam_averages_batch_norm_statistics() -> None:
    start = ArrayRecord(_state(0.0))
    config = ConfigRecord({keys.SERVER_ROUND: 1})
    prox = fedavg_strategy(RunConfig(fedavg_strategy="FedProx", fedprox_mu=0.1, num_clients=2))
    sent = list(prox.configure_train(1, start, config, LoopbackGrid([1, 2])))  # type: ignore[arg-type]
    assert sent[0].content[keys.TRAIN_CONFIG][keys.PROXIMAL_MU] == 0.1

    adam = fedavg_strategy(
        RunConfig(fedavg_strategy="FedAdam", fedadam_eta=0.01, num_clients=2, fraction_train=1.0)
    )
    msgs = list(adam.configure_train(1, start, config, LoopbackGrid([1, 2])))  # type: ignore[arg-type]
    replies = []
    for msg, shift, examples in zip(msgs, (1.0, 3.0), (10, 30), strict=True):
        content = RecordDict(
            {
                keys.FEDAVG_ARRAYS: ArrayRecord(_state(shift)),
                keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: examples}),
            }
        )
        replies.append(Message(content, reply_to=msg))
    arrays, _ = adam.aggregate_train(1, replies)
    assert arrays is not None
    out = arrays.to_torch_state_dict()
    base = _state(0.0)
    var = next(k for k in out if k.endswith("running_var"))
    # the examples-weighted mean of the replies (+2.5), not an Adam step
    assert torch.allclose(out[var], base[var] + 2.5, atol=1e-5)
    assert all(out[k].dtype == base[k].dtype for k in base)  # float32 travels as float32
    tracked = next(k for k in out if k.endswith("num_batches_tracked"))
    assert out[tracked].dtype == base[tracked].dtype
    weight = next(k for k in out if k.endswith("weight") and out[k].ndim > 1)
    step = (out[weight] - base[weight]).abs().max().item()
    assert 0 < step <= 0.01 * 1.01  # a server Adam step of at most eta per parameter
    assert adam.current is not None and adam.current.clients_ok == 2
    assert np.isfinite(step)


def test_a_fedavg_round_is_timed_like_a_distillation_round() -> None:
    import time

    start = ArrayRecord(_state(0.0))
    config = ConfigRecord({keys.SERVER_ROUND: 1})
    adam = fedavg_strategy(RunConfig(fedavg_strategy="FedAdam", num_clients=2, fraction_train=1.0))
    contents = [
        RecordDict(
            {
                keys.FEDAVG_ARRAYS: ArrayRecord(_state(1.0)),
                keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 5, keys.CLIENT_SECONDS: s}),
            }
        )
        for s in (0.3, 0.1)
    ]
    msgs = list(adam.configure_train(1, start, config, LoopbackGrid([1, 2])))  # type: ignore[arg-type]
    time.sleep(0.1)  # the clients work
    replies = [Message(c, reply_to=m) for m, c in zip(msgs, contents, strict=True)]
    adam.aggregate_train(1, replies)
    assert adam.current is not None
    phases = adam.current.phase_seconds
    assert list(phases) == [
        keys.PHASE_SEND,
        keys.PHASE_CLIENTS,
        keys.PHASE_RECEIVE,
        keys.PHASE_AGGREGATE,
    ]
    assert 0.1 <= phases[keys.PHASE_CLIENTS] < 0.3
    assert phases[keys.PHASE_RECEIVE] < phases[keys.PHASE_CLIENTS]
    assert phases[keys.PHASE_AGGREGATE] > 0.0
    assert adam.current.client_seconds_max == pytest.approx(0.3)
