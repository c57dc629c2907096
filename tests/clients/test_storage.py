"""A client keeps its student in its state and, with a state folder, as student files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from flwr.app import RecordDict

from clients import storage
from clients.node import Node
from common import keys
from common.config import RunConfig
from common.federation import Federation, load_federation
from common.models import build_model
from common.student_file import load_student
from tests.clients.contexts import node_context


def _node(cfg: RunConfig, partition_id: int = 1) -> Node:
    return Node.of(node_context(cfg, {keys.NODE_PARTITION_ID: partition_id}))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def fed(fixture_data: Path) -> Federation:
    return load_federation(RunConfig(data_dir=str(fixture_data), num_clients=3))


def test_student_files_are_found_by_round_and_the_two_newest_kept(
    fed: Federation, tmp_path: Path
) -> None:
    cfg = RunConfig(num_clients=3, out_dir=str(tmp_path))
    node, state = _node(cfg), RecordDict()
    (tmp_path / storage.STUDENTS_DIR).mkdir()
    (tmp_path / storage.STUDENTS_DIR / "drone-00001-rxx.pt").touch()  # not a round: ignored
    students = {}
    for server_round in (1, 2, 3):
        students[server_round] = build_model(node.arch, 3, 10, seed=server_round)
        storage.keep_student(state, node, fed, students[server_round], server_round)
    saved = storage.saved_students(tmp_path, "drone", 1)
    assert saved == [(r, storage.student_path(tmp_path, "drone", 1, r)) for r in (2, 3)]
    assert saved[-1][1].name == "drone-00001-r00003.pt"
    assert storage.latest_student(tmp_path, "drone", 1) == saved[-1][1]
    assert storage.latest_student(tmp_path, "drone", 1, before_round=3) == saved[0][1]
    assert storage.latest_student(tmp_path, "drone", 1, before_round=2) is None
    assert storage.latest_student(tmp_path, "satellite", 0) is None
    kept = load_student(saved[-1][1])
    assert (kept.arch, kept.role, kept.stats) == ("small", "drone", fed.stats)
    assert kept.bands == fed.spec.band_names and _same(kept.build(), students[3])
    assert storage.has_student(state)
    assert _same(storage.current_student(state, node, fed), students[3])


def test_the_student_comes_from_the_state_then_a_saved_file_then_a_fresh_seeded_one(
    fed: Federation, tmp_path: Path
) -> None:
    cfg = RunConfig(num_clients=3, out_dir=str(tmp_path), client_init="scratch")
    node = _node(cfg)
    assert not storage.has_student(RecordDict())
    fresh = storage.current_student(RecordDict(), node, fed)
    assert _same(fresh, build_model("small", 3, 10, seed=cfg.seed))
    trained = build_model("small", 3, 10, seed=5)
    storage.keep_student(RecordDict(), node, fed, trained, 4)
    # without resume a restarted node starts afresh; with it, from the file of an earlier round
    assert _same(storage.current_student(RecordDict(), node, fed, 5), fresh)
    resumed = _node(replace(cfg, resume=1))
    assert _same(storage.current_student(RecordDict(), resumed, fed, 5), trained)
    assert _same(storage.current_student(RecordDict(), resumed, fed, 4), fresh)  # not round 4's


def test_without_a_state_folder_the_student_stays_in_memory(fed: Federation) -> None:
    node, state = _node(RunConfig(num_clients=3)), RecordDict()
    assert node.state_dir is None
    storage.keep_student(state, node, fed, build_model("small", 3, 10, seed=1), 1)
    assert storage.has_student(state)


def test_statistics_are_marked_sent_once() -> None:
    state = RecordDict()
    assert not storage.statistics_sent(state) and storage.statistics_round(state) is None
    storage.mark_statistics_sent(state, 3)
    assert storage.statistics_sent(state) and storage.statistics_round(state) == 3
    storage.mark_statistics_sent(state, 7)  # a sleeper sends its lie once more
    assert storage.statistics_round(state) == 7
