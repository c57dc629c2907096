"""bench scale's plain loop on fixture tiles: it replays traced train messages and says what
each part of a client round cost (no Flower runtime: the replay is in-process by design)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from clients import timing
from clients.trace import save_train
from common import keys
from common.codec import Codec, encode
from common.config import RunConfig
from common.federation import load_federation
from simulations.bench.scale import plain_loop


def _trace(cfg: RunConfig, folder: Path, rounds: int, clients: list[int]) -> None:
    fed = load_federation(cfg)
    rng = np.random.default_rng(0)
    for server_round in range(1, rounds + 1):
        indices = rng.choice(len(fed.partition.reference), 8, replace=False)
        targets = rng.dirichlet(np.ones(10), len(indices))
        record = ArrayRecord({k: Array(a) for k, a in encode(targets, Codec.INT8).items()})
        record[keys.INDICES] = Array(indices.astype(np.uint16))
        config = ConfigRecord({keys.SERVER_ROUND: server_round, keys.CODEC: "int8",
                               keys.TEMPERATURE: 2.0, keys.KD_WEIGHT: 1.0,
                               keys.NORM_MEAN: list(fed.stats.mean),
                               keys.NORM_STD: list(fed.stats.std)})  # fmt: skip
        content = RecordDict({keys.TARGETS: record, keys.TRAIN_CONFIG: config})
        for k in clients:
            save_train(folder, content, server_round, k)


def test_the_plain_loop_times_every_part_of_a_client_round(
    fixture_data: Path, tmp_path: Path
) -> None:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=6, client_init="scratch",
                    batch_size=16, shard_size=8, out_dir=str(tmp_path / "flower"))  # fmt: skip
    _trace(cfg, tmp_path / "trace", rounds=2, clients=[0, 3, 5])
    plain = plain_loop(cfg, tmp_path / "trace", tmp_path / "plain")
    assert plain.client_rounds == 6 and len(plain.round_seconds) == 2
    assert set(plain.parts) == set(timing.PARTS)
    assert all(plain.parts[p] > 0 for p in timing.PARTS)
    assert 0 < plain.compute_seconds < sum(plain.parts.values()) <= plain.seconds
    assert plain.compute_ratio == plain.seconds / plain.compute_seconds > 1
    ms = plain.per_client_round()
    assert set(ms) == {*timing.PARTS, "other", "total"}
    assert abs(sum(ms[p] for p in (*timing.PARTS, "other")) - ms["total"]) < 0.1
    # every client wrote its student file in every round it trained (two kept)
    assert len(list((tmp_path / "plain" / "students").glob("*.pt"))) == 6
