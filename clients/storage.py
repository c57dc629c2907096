"""What a client keeps between rounds: its student and whether its statistics were sent.

The student lives in the Flower context's state (an ArrayRecord) for as long as the node runs,
and, where the node has a state folder (the run's out-dir in simulation, an agent's
``state-dir``), also as student files (common/student_file.py) named
``students/<role>-<partition>-r<round>.pt``: the two newest are kept, so a client resumes
after a server restart and a deployment picks up the latest. A file is written in every round
the client trains: the server checkpoints after every round, and a resumed client must find
the student it had then (a file written only at the end would be lost with a crash).

With each student the state gets a fresh token, and the process keeps the module itself
under that token (clients/resident.py): the next round on the same process starts from that
module instead of rebuilding it from the state, as long as the state still names the token.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from torch import nn

from clients import resident
from clients.node import Node
from common import keys
from common.federation import Federation
from common.models import build_model
from common.student_file import load_student, save_student

STUDENT_STATE = "student"
STUDENT_TOKEN = "student-token"  # which student the state holds: (token, round)
TOKEN = "token"
STATISTICS_SENT = "statistics-sent"  # the round this client's class statistics were sent in
STUDENTS_DIR = "students"
KEEP = 2  # student files kept: after a crash the server may redo the round just saved


def student_path(out_dir: Path, role: str, partition_id: int, server_round: int) -> Path:
    """Where a client keeps the student it trained in ``server_round``."""
    return out_dir / STUDENTS_DIR / f"{role}-{partition_id:05d}-r{server_round:05d}.pt"


def saved_students(out_dir: Path, role: str, partition_id: int) -> list[tuple[int, Path]]:
    """(round, path) of a client's saved students, oldest first."""
    found = []
    for path in (out_dir / STUDENTS_DIR).glob(f"{role}-{partition_id:05d}-r*.pt"):
        try:
            found.append((int(path.stem.rsplit("-r", 1)[1]), path))
        except ValueError:
            continue
    return sorted(found)


def latest_student(
    out_dir: Path, role: str, partition_id: int, before_round: int | None = None
) -> Path | None:
    """The newest saved student (trained before ``before_round``, if given), or None."""
    found = [
        p
        for r, p in saved_students(out_dir, role, partition_id)
        if before_round is None or r < before_round
    ]
    return found[-1] if found else None


def has_student(state: RecordDict) -> bool:
    """Whether this node has trained (or been given) a student since it started."""
    return isinstance(state.get(STUDENT_STATE), ArrayRecord)


def student_token(state: RecordDict) -> str | None:
    """The token of the student in this state (None before the first one)."""
    record = state.get(STUDENT_TOKEN)
    token = record.get(TOKEN) if isinstance(record, ConfigRecord) else None
    return token if isinstance(token, str) else None


def current_student(
    state: RecordDict,
    node: Node,
    fed: Federation,
    server_round: int | None = None,
    *,
    key: resident.NodeKey | None = None,
    take: bool = False,
) -> nn.Module:
    """The student in this client's state; after a server restart (``resume``) the one it
    saved before this round; else the pre-installed one (or a fresh one).

    With the node's ``key``, the module this process kept for the state's token comes first;
    ``take`` takes it out of the process's memory (to train it: :func:`keep_student` puts it
    back), else it stays there (to evaluate it)."""
    cfg = node.cfg
    if key is not None:
        token = student_token(state)
        find = resident.take_student if take else resident.peek_student
        kept = find(key, token, node.arch)
        if kept is not None:
            return kept
    saved = state.get(STUDENT_STATE)
    if isinstance(saved, ArrayRecord):
        return resident.module(
            node.arch, fed.spec.num_bands, fed.num_classes, saved.to_torch_state_dict()
        )
    if cfg.resume and node.state_dir is not None:
        path = latest_student(node.state_dir, node.role, node.partition_id, server_round)
        if path is not None:
            return load_student(path).build()
    if cfg.client_init == "pretrained":
        return resident.preinstalled(cfg, fed, node.arch)
    return build_model(node.arch, fed.spec.num_bands, fed.num_classes, seed=cfg.seed)


def keep_student(
    state: RecordDict,
    node: Node,
    fed: Federation,
    student: nn.Module,
    server_round: int,
    *,
    key: resident.NodeKey | None = None,
) -> None:
    """Keep ``student`` in the state and, with a state folder, as this round's student file;
    with the node's ``key``, the module itself stays in this process's memory too."""
    token = uuid.uuid4().hex
    state[STUDENT_STATE] = ArrayRecord(student.state_dict())
    state[STUDENT_TOKEN] = ConfigRecord({TOKEN: token, keys.SERVER_ROUND: server_round})
    if key is not None:
        resident.keep_student(key, token, node.arch, student)
    if node.state_dir is None:
        return
    save_student(
        student_path(node.state_dir, node.role, node.partition_id, server_round),
        student,
        arch=node.arch,
        role=node.role,
        bands=fed.spec.band_names,
        classes=fed.spec.classes,
        stats=fed.stats,
    )
    for _, old in saved_students(node.state_dir, node.role, node.partition_id)[:-KEEP]:
        old.unlink(missing_ok=True)


def statistics_sent(state: RecordDict) -> bool:
    """Whether this client's class statistics have left (a shard does not change: once)."""
    return bool(state.get(STATISTICS_SENT))


def statistics_round(state: RecordDict) -> int | None:
    """The round this client's class statistics were last sent in (None: never)."""
    record = state.get(STATISTICS_SENT)
    value = record.get(keys.SERVER_ROUND) if isinstance(record, ConfigRecord) else None
    return value if isinstance(value, int) else None


def mark_statistics_sent(state: RecordDict, server_round: int) -> None:
    state[STATISTICS_SENT] = ConfigRecord({keys.SERVER_ROUND: server_round})
