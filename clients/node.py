"""Who a node is, decoded once from the Flower context: run config, partition, role, data.

A simulated client is partition ``partition-id`` of the run's federation, with the role the
run config (or the fleet scenario) gives it; an edge agent (``skydistill agent``) names its
own role, data folder, node name and state folder in its node config (clients/agent.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context

from clients.local_data import local_splits
from common import keys
from common.config import RunConfig
from common.errors import ConfigError
from common.federation import Federation, Split


@functools.cache
def _scenario_roles(scenario: str) -> tuple[str, ...]:
    from common.fleet.scenario import load_scenario  # only fleets need the scenario

    return tuple(load_scenario(scenario).roles())


def scenario_role(scenario: str, partition_id: int) -> str:
    """The role of simulated client ``partition_id`` in a fleet scenario."""
    roles = _scenario_roles(scenario)
    if not 0 <= partition_id < len(roles):
        raise ConfigError(f"partition {partition_id} is not in scenario {scenario!r}")
    return roles[partition_id]


@dataclass(frozen=True)
class Node:
    cfg: RunConfig
    partition_id: int  # = the scenario client; an agent's is derived from its node name
    role: str
    threads: int  # torch threads of each local round
    name: str  # stable: an agent's node name, else the simulated client's role and partition
    data_dir: Path | None = None  # an agent's own labelled folder (None: a simulation shard)
    state_dir: Path | None = None  # where its students are kept on disk (None: nowhere)

    @classmethod
    def of(cls, context: Context) -> Node:
        cfg = RunConfig.from_mapping(context.run_config)
        node = context.node_config
        threads = int(node.get(keys.NODE_NUM_THREADS, 1))
        partition_id = int(node[keys.NODE_PARTITION_ID])
        default = scenario_role(cfg.scenario, partition_id) if cfg.scenario else None
        role = str(node.get(keys.NODE_ROLE, default or cfg.role_of(partition_id)))
        data_dir = node.get(keys.NODE_DATA_DIR)
        if data_dir:  # an agent: its students go to its state-dir
            state = node.get(keys.NODE_STATE_DIR)
            state_dir = Path(str(state)) if state else None
        else:  # a simulated client: the run's out-dir
            state_dir = Path(cfg.out_dir) if cfg.out_dir else None
        name = node.get(keys.NODE_NAME)
        return cls(
            cfg=cfg,
            partition_id=partition_id,
            role=role,
            threads=threads,
            name=str(name) if name else f"{role}-{partition_id}",
            data_dir=Path(str(data_dir)) if data_dir else None,
            state_dir=state_dir,
        )

    @property
    def arch(self) -> str:
        """The architecture of this node's student."""
        return self.cfg.arch_of(self.role)

    def splits(self, fed: Federation) -> tuple[Split, Split]:
        """(train, held-out): an agent's own folder, else the simulation partition."""
        cfg = self.cfg
        if self.data_dir is not None:
            return local_splits(
                fed, self.data_dir, cfg.holdout_fraction, cfg.seed, self.partition_id
            )
        if not 0 <= self.partition_id < cfg.num_clients:  # more simulated SuperNodes than shards
            raise ConfigError(
                f"partition-id {self.partition_id} has no data: the run config has num-clients "
                f"= {cfg.num_clients} (partitions 0..{cfg.num_clients - 1}); run as many "
                "SuperNodes as clients: flwr run . --federation-config "
                f'"num-supernodes={cfg.num_clients}"'
            )
        return fed.client_splits(self.partition_id, cfg.holdout_fraction, cfg.seed)
