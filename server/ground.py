"""The ground segment: teacher, its soft labels on the reference set, the global student.

Both models are cached, so a run prepares them once; ``skydistill simulate`` calls
:func:`prepare` before it starts any Flower process, so this CPU-heavy step does not compete
with Ray and shows up in the CLI's log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from common.class_stats import STATISTICS_BACKBONE
from common.config import RunConfig
from common.federation import Federation, load_federation
from common.preinstalled import shares_global
from server.global_student import GlobalStudent
from server.preinstall import preinstall
from server.teacher import load_or_train_teacher, reference_probs

log = logging.getLogger(__name__)


@dataclass
class GroundSegment:
    fed: Federation
    teacher: nn.Module
    teacher_probs: np.ndarray  # (reference tiles, classes)
    teacher_accuracy: float
    student: GlobalStudent
    student_start_accuracy: float
    preinstalled_accuracy: dict[str, float]  # architecture -> test accuracy
    # Wall seconds of each preparation step (``teacher``, ``global-student``,
    # ``preinstall-<arch>``): close to zero when the step came from the cache.
    seconds: dict[str, float] = field(default_factory=dict)

    def without_clients(self, updates: int) -> list[float]:
        """The control that every federated figure is read against: the global student's
        server updates towards the teacher's soft labels alone (no client contributes, and
        without clients the fused knowledge is the teacher's: server/evidence.py), its test
        accuracy after each of ``updates``. Trains ``student`` in place: call it once, after
        the federations that start from the same pre-trained student."""
        accuracies = []
        for server_round in range(1, updates + 1):
            self.student.distil(self.teacher_probs, server_round)
            accuracies.append(self.student.evaluate())
        if accuracies:
            log.info("global student without clients, %d updates: %.4f", updates, accuracies[-1])
        return accuracies


def preinstalled_archs(cfg: RunConfig) -> list[str]:
    """The architectures whose pre-installed students the run needs: those of the roles its
    clients have (the FedAvg baseline: its one student), plus the statistics' backbone."""
    if cfg.method == "fedavg":
        return [cfg.student or "tiny"]
    archs: set[str] = set()
    if cfg.client_init == "pretrained":
        roles = cfg.role_cycle
        if not cfg.scenario:  # clients take the roles in turn: fewer clients, fewer roles
            roles = roles[: max(1, cfg.num_clients)]
        archs = {cfg.arch_of(role) for role in roles}
    if cfg.client_statistics:
        # every node holds the shared backbone whose features the statistics are in
        archs.add(STATISTICS_BACKBONE)
    return sorted(archs)


def prepare(
    cfg: RunConfig, *, progress: bool = False, on_data: Callable[[], object] | None = None
) -> GroundSegment:
    """Load the data and train (or find cached) the teacher, the global student and the
    pre-installed students, in that order.

    ``progress``: show a tqdm bar over the epochs of each model trained here. Off by default,
    for library callers (the ServerApp, which finds every model cached by then; benchmarks;
    tests); ``skydistill simulate`` turns it on, and the start of each training is logged
    either way. ``on_data`` is called once the tiles are loaded, before any training (a caller
    starts there what is only worth starting with valid data)."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    fed = load_federation(cfg)
    lap("data")
    if on_data is not None:
        on_data()
    teacher, teacher_accuracy = load_or_train_teacher(cfg, fed, progress=progress)
    log.info("teacher test accuracy %.4f", teacher_accuracy)
    student = GlobalStudent(fed, cfg)
    teacher_probs = reference_probs(cfg, fed, teacher, student.reference)
    lap("teacher")
    start = float("nan")
    if cfg.method == "fedkd":  # the FedAvg baseline has no server-side student
        start = student.pretrain(teacher_probs, progress=progress)
        log.info("global student starts at test accuracy %.4f", start)
        lap("global-student")
    preinstalled: dict[str, float] = {}
    for arch in preinstalled_archs(cfg):
        if cfg.method == "fedkd" and shares_global(cfg, arch):
            preinstalled[arch] = start  # the global student's pre-training, just done
            continue
        preinstalled[arch] = preinstall(cfg, fed, arch, teacher_probs, progress=progress)
        lap(f"preinstall-{arch}")
    return GroundSegment(
        fed, teacher, teacher_probs, teacher_accuracy, student, start, preinstalled, seconds
    )
