"""The app's objects from the run config: which strategy, told who the nodes are."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict

from common import keys
from common.config import RunConfig
from common.federation import Federation
from server.build import build_refiner, build_strategy, round_configs
from server.contact_fedkd import ContactFedKD
from server.ground import GroundSegment
from server.strategy import FedKD
from tests.server.loopback import LoopbackGrid

ROLES = ("satellite", "drone", "ground-station")


class QueryGrid(LoopbackGrid):
    """Answers the server's QUERY with node i's partition id and role; counts the queries."""

    def __init__(self, nodes: list[int]) -> None:
        super().__init__(nodes)
        self.queries = 0

    def send_and_receive(self, messages: list[Message], timeout: float = 0.0) -> list[Message]:
        replies = []
        for m in messages:
            self.queries += 1
            pid = self.nodes.index(m.metadata.dst_node_id)
            info = ConfigRecord({keys.PARTITION_ID: pid, keys.ROLE: ROLES[pid % 3]})
            replies.append(Message(RecordDict({keys.INFO: info}), reply_to=m))
        return replies


def _ground() -> GroundSegment:
    teacher = np.full((50, 10), 0.1, np.float32)
    return SimpleNamespace(teacher_probs=teacher)  # type: ignore[return-value]


def test_a_run_without_scenario_gets_fedkd_with_the_configs_settings() -> None:
    cfg = RunConfig(reference_per_round=20, fraction_train=0.5, seed=3, teacher_mix=0.3)
    grid = QueryGrid([5, 6, 7])
    strategy = build_strategy(cfg, _ground(), grid)
    assert type(strategy) is FedKD
    assert (strategy.reference_per_round, strategy.fraction_train, strategy.seed) == (20, 0.5, 3)
    assert strategy.knowledge.teacher_mix == 0.3 and strategy.knowledge.mix_start == 0.9
    assert grid.queries == 0 and strategy.node_clients == {}  # nobody needs to be asked


def test_sampling_by_client_asks_the_nodes_who_they_are() -> None:
    grid = QueryGrid([5, 6, 7])
    strategy = build_strategy(RunConfig(num_clients=3, sample_by="client"), _ground(), grid)
    assert type(strategy) is FedKD and strategy.sample_by_client
    assert strategy.node_clients == {5: 0, 6: 1, 7: 2}
    assert strategy.node_archs == {5: "tiny", 6: "small", 7: "medium"}


def test_a_scenario_gets_the_contact_aware_subclass_on_its_schedule() -> None:
    from common.fleet.schedule import ContactAwareSchedule, SynchronousSchedule

    nodes = list(range(100, 107))
    cfg = RunConfig(scenario="small", num_clients=7)
    strategy = build_strategy(cfg, _ground(), QueryGrid(nodes))
    assert isinstance(strategy, ContactFedKD)
    assert isinstance(strategy.schedule, ContactAwareSchedule)
    assert strategy.node_clients == {n: i for i, n in enumerate(nodes)}
    synchronous = RunConfig(scenario="small", num_clients=7, schedule="synchronous")
    strategy = build_strategy(synchronous, _ground(), QueryGrid(nodes))
    assert isinstance(strategy, ContactFedKD)
    assert isinstance(strategy.schedule, SynchronousSchedule)


def test_no_refiner_unless_the_teacher_is_refined() -> None:
    assert build_refiner(RunConfig(teacher_refine_epochs=0), _ground()) is None


def test_round_configs_carry_the_distillation_settings_and_the_normalisation() -> None:
    stats = SimpleNamespace(mean=(1.0, 2.0, 3.0), std=(0.5, 0.5, 0.5))
    fed: Federation = SimpleNamespace(stats=stats)  # type: ignore[assignment]
    train, evaluate = round_configs(RunConfig(temperature=3.0, kd_weight=0.5), fed)
    assert dict(train) == {
        keys.TEMPERATURE: 3.0,
        keys.KD_WEIGHT: 0.5,
        keys.NORM_MEAN: [1.0, 2.0, 3.0],
        keys.NORM_STD: [0.5, 0.5, 0.5],
    }
    assert dict(evaluate) == {keys.NORM_MEAN: [1.0, 2.0, 3.0], keys.NORM_STD: [0.5, 0.5, 0.5]}
