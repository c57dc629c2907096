from __future__ import annotations

import numpy as np
import pytest

from common.errors import CodecError
from server.knowledge import Knowledge, teacher_mix_schedule


def test_schedule_goes_linearly_from_start_to_end() -> None:
    assert teacher_mix_schedule(0.9, 0.5, 1, 5) == pytest.approx(0.9)
    assert teacher_mix_schedule(0.9, 0.5, 3, 5) == pytest.approx(0.7)
    assert teacher_mix_schedule(0.9, 0.5, 5, 5) == pytest.approx(0.5)
    assert teacher_mix_schedule(0.9, 0.5, 9, 5) == pytest.approx(0.5)
    assert teacher_mix_schedule(0.9, 0.5, 1, 1) == pytest.approx(0.5)


def test_update_mixes_only_the_predicted_rows() -> None:
    teacher = np.array([[0.6, 0.4], [0.5, 0.5], [0.0, 1.0]], np.float32)
    k = Knowledge(teacher, teacher_mix=0.5, mix_start=1.0, num_rounds=3)
    agg = np.array([[0.0, 1.0]], np.float32)
    k.update(np.array([0]), agg, server_round=1)  # mix 1.0: teacher only
    np.testing.assert_allclose(k.targets, teacher)
    k.update(np.array([0]), agg, server_round=3)  # mix 0.5
    np.testing.assert_allclose(k.targets[0], [0.3, 0.7])
    np.testing.assert_allclose(k.targets[1:], teacher[1:])
    assert k.teacher_agreement() == pytest.approx(2 / 3)  # row 0 now votes class 1


def test_update_rejects_bad_aggregates() -> None:
    k = Knowledge(np.eye(3, dtype=np.float32), teacher_mix=0.5)
    with pytest.raises(CodecError):
        k.update(np.array([0, 1]), np.full((2, 3), np.nan, np.float32))


def test_a_refined_teacher_is_the_teacher_part_of_later_updates() -> None:
    k = Knowledge(np.array([[0.5, 0.5], [0.5, 0.5]], np.float32), teacher_mix=0.5)
    k.set_teacher(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32))
    np.testing.assert_allclose(k.targets, 0.5)  # the targets are not touched until an update
    k.update(np.array([0, 1]), np.array([[0.0, 1.0], [0.0, 1.0]], np.float32))
    np.testing.assert_allclose(k.targets, [[0.5, 0.5], [0.0, 1.0]])
    # Against the refined teacher (the first one, uniform, has argmax 0 on row 1: 0.5).
    assert k.teacher_agreement() == pytest.approx(1.0)
    with pytest.raises(CodecError, match="expected"):
        k.set_teacher(np.full((3, 2), 0.5, np.float32))
    with pytest.raises(CodecError, match="NaN"):
        k.set_teacher(np.array([[np.nan, 1.0], [0.5, 0.5]], np.float32))
