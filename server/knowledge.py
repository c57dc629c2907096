"""The federation's knowledge: soft targets on every reference tile, mixed with the teacher."""

from __future__ import annotations

import numpy as np

from common.codec import validate_probabilities


class Knowledge:
    """K_t over the whole reference set; starts as the teacher's soft labels.

    After each round, the targets of the tiles clients predicted become
    ``teacher_mix * teacher + (1 - teacher_mix) * aggregate``; the others keep their value.
    """

    def __init__(self, teacher_probs: np.ndarray, teacher_mix: float) -> None:
        self.teacher = validate_probabilities(teacher_probs).copy()
        self.teacher_mix = float(teacher_mix)
        self.targets = self.teacher.copy()

    @property
    def shape(self) -> tuple[int, int]:
        n, c = self.targets.shape
        return int(n), int(c)

    def update(self, indices: np.ndarray, aggregate: np.ndarray) -> None:
        agg = validate_probabilities(aggregate, (len(indices), self.shape[1]))
        mixed = self.teacher_mix * self.teacher[indices] + (1.0 - self.teacher_mix) * agg
        self.targets[indices] = mixed / mixed.sum(axis=1, keepdims=True)

    def teacher_agreement(self) -> float:
        """Fraction of reference tiles whose target argmax equals the teacher's."""
        return float((self.targets.argmax(1) == self.teacher.argmax(1)).mean())
