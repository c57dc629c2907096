"""A simulated node whose partition-id has no shard is told how to size the federation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from flwr.app import Context, RecordDict

from clients.app import _identity, _splits
from common import keys
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import load_federation


def _context(cfg: RunConfig, **node: int | str) -> Context:
    run_config = {k: v for k, v in cfg.to_mapping().items() if v is not None}
    return Context(run_id=1, node_id=1, node_config=dict(node), state=RecordDict(),
                   run_config=run_config)  # fmt: skip


def test_a_partition_beyond_num_clients_names_the_fix(fixture_data: Path) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3)
    fed = load_federation(cfg)
    context = _context(cfg, **{keys.NODE_PARTITION_ID: 3})
    train, _ = _splits(_context(cfg, **{keys.NODE_PARTITION_ID: 2}), cfg, fed, 2)
    assert len(train) > 0  # the last partition still has its shard
    for partition_id in (3, 7):
        with pytest.raises(ConfigError) as err:
            _splits(context, cfg, fed, partition_id)
        message = str(err.value)
        assert f"partition-id {partition_id}" in message and "num-clients = 3" in message
        assert '--federation-config "num-supernodes=3"' in message


def test_num_threads_of_the_node_config_sets_torch_threads() -> None:
    before = torch.get_num_threads()
    cfg = RunConfig(num_clients=3)
    try:
        node = {keys.NODE_PARTITION_ID: 1, keys.NODE_NUM_THREADS: 2}
        _, partition_id, _ = _identity(_context(cfg, **node))
        assert partition_id == 1 and torch.get_num_threads() == 2
        _identity(_context(cfg, **{keys.NODE_PARTITION_ID: 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
