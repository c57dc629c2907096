"""A node decodes who it is from its context; a partition without a shard names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from flwr.app import Context

from clients.app import node_of
from clients.node import Node
from common import keys
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import load_federation
from tests.clients.contexts import node_context


def _context(cfg: RunConfig, **node: int | str) -> Context:
    return node_context(cfg, node)


def test_a_partition_beyond_num_clients_names_the_fix(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    train, _ = Node.of(_context(cfg, **{keys.NODE_PARTITION_ID: 2})).splits(fed)
    assert len(train) > 0  # the last partition still has its shard
    for partition_id in (3, 7):
        node = Node.of(_context(cfg, **{keys.NODE_PARTITION_ID: partition_id}))
        with pytest.raises(ConfigError) as err:
            node.splits(fed)
        message = str(err.value)
        assert f"partition-id {partition_id}" in message and "num-clients = 3" in message
        assert '--federation-config "num-supernodes=3"' in message


def test_num_threads_of_the_node_config_sets_torch_threads() -> None:
    before = torch.get_num_threads()
    cfg = RunConfig(num_clients=3)
    try:
        node = {keys.NODE_PARTITION_ID: 1, keys.NODE_NUM_THREADS: 2}
        assert node_of(_context(cfg, **node)).partition_id == 1
        assert torch.get_num_threads() == 2
        node_of(_context(cfg, **{keys.NODE_PARTITION_ID: 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_simulated_client_keeps_its_students_in_the_out_dir(tmp_path: Path) -> None:
    cfg = RunConfig(num_clients=3, roles="satellite,drone", out_dir=str(tmp_path))
    node = Node.of(_context(cfg, **{keys.NODE_PARTITION_ID: 1}))
    assert (node.role, node.arch, node.name) == ("drone", "small", "drone-1")
    assert node.data_dir is None and node.state_dir == tmp_path and node.threads == 1
    assert Node.of(_context(RunConfig(), **{keys.NODE_PARTITION_ID: 0})).state_dir is None


def test_an_agent_names_its_role_data_and_state(tmp_path: Path) -> None:
    cfg = RunConfig(out_dir=str(tmp_path / "run"))  # not where an agent keeps its students
    config = {
        keys.NODE_PARTITION_ID: 4242,
        keys.NODE_ROLE: "ground-station",
        keys.NODE_DATA_DIR: str(tmp_path / "tiles"),
        keys.NODE_NAME: "gs-1",
        keys.NODE_STATE_DIR: str(tmp_path / "state"),
    }
    node = Node.of(_context(cfg, **config))
    assert (node.partition_id, node.role, node.name) == (4242, "ground-station", "gs-1")
    assert node.data_dir == tmp_path / "tiles" and node.state_dir == tmp_path / "state"
    del config[keys.NODE_STATE_DIR]
    assert Node.of(_context(cfg, **config)).state_dir is None
