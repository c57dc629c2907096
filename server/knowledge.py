"""The federation's knowledge: soft targets on every reference tile, mixed with the teacher."""

from __future__ import annotations

import numpy as np

from common.codec import validate_probabilities


def teacher_mix_schedule(start: float, end: float, server_round: int, num_rounds: int) -> float:
    """Teacher weight in round ``server_round`` (1-based): linear from ``start`` to ``end``.

    Early on the clients' students are still weak, so the targets stay close to the teacher;
    as the students learn from their private data, their consensus gets more weight.
    """
    if num_rounds <= 1:
        return end
    t = min(max((server_round - 1) / (num_rounds - 1), 0.0), 1.0)
    return start + (end - start) * t


class Knowledge:
    """K_t over the whole reference set; starts as the teacher's soft labels.

    After each round, the targets of the tiles clients predicted become
    ``mix * teacher + (1 - mix) * aggregate``; the others keep their value. ``mix`` follows
    :func:`teacher_mix_schedule` from ``mix_start`` to ``teacher_mix``.
    """

    def __init__(
        self,
        teacher_probs: np.ndarray,
        teacher_mix: float,
        *,
        mix_start: float | None = None,
        num_rounds: int = 1,
    ) -> None:
        self.teacher = validate_probabilities(teacher_probs).copy()
        self.teacher_mix = float(teacher_mix)
        self.mix_start = self.teacher_mix if mix_start is None else float(mix_start)
        self.num_rounds = num_rounds
        self.targets = self.teacher.copy()
        # The targets fused with other evidence (class statistics, server/evidence.py): what
        # clients receive and the global student learns, when set. ``targets`` stays the soft
        # state that the clients' predictions update.
        self.overlay: np.ndarray | None = None

    @property
    def current(self) -> np.ndarray:
        """The knowledge on every reference tile as it is used: the overlay if any."""
        return self.targets if self.overlay is None else self.overlay

    def set_overlay(self, fused: np.ndarray | None) -> None:
        self.overlay = None if fused is None else validate_probabilities(fused, self.shape)

    def mix_for(self, server_round: int) -> float:
        return teacher_mix_schedule(self.mix_start, self.teacher_mix, server_round, self.num_rounds)

    @property
    def shape(self) -> tuple[int, int]:
        n, c = self.targets.shape
        return int(n), int(c)

    def update(self, indices: np.ndarray, aggregate: np.ndarray, server_round: int = 1) -> None:
        agg = validate_probabilities(aggregate, (len(indices), self.shape[1]))
        mix = self.mix_for(server_round)
        mixed = mix * self.teacher[indices] + (1.0 - mix) * agg
        self.targets[indices] = mixed / mixed.sum(axis=1, keepdims=True)

    def set_teacher(self, probs: np.ndarray) -> None:
        """New teacher soft labels (a refined teacher): the teacher part of later updates."""
        self.teacher = validate_probabilities(probs, self.shape).copy()

    def teacher_agreement(self) -> float:
        """Fraction of reference tiles whose target argmax equals the teacher's."""
        return float((self.current.argmax(1) == self.teacher.argmax(1)).mean())
