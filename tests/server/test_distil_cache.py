"""A benchmark's distil cache: a round whose inputs an earlier run had is loaded, not computed,
and ends exactly where computing it would; any other input is another entry."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from common.config import RunConfig
from common.federation import load_federation
from server.global_student import GlobalStudent


def _student(fixture_data: Path, cache: Path | None) -> GlobalStudent:
    cfg = RunConfig(
        data_dir=str(fixture_data),
        num_clients=3,
        batch_size=16,
        precision="fp32",
        distil_cache=str(cache) if cache else "",
    )
    return GlobalStudent(load_federation(cfg), cfg)


def _targets(student: GlobalStudent, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, c = len(student.reference), student.fed.num_classes
    return rng.dirichlet(np.ones(c), n).astype(np.float32)


def _weights(student: GlobalStudent) -> list[torch.Tensor]:
    return [t.clone() for t in student.model.state_dict().values()]


def test_a_round_with_an_earlier_runs_inputs_is_loaded_and_ends_where_computing_ends(
    fixture_data: Path, tmp_path: Path
) -> None:
    plain = _student(fixture_data, None)
    first = _student(fixture_data, tmp_path / "cache")
    second = _student(fixture_data, tmp_path / "cache")
    targets = _targets(plain, 0)
    losses = [s.distil(targets, 1) for s in (plain, first, second)]
    assert not plain.last_reused and not first.last_reused and second.last_reused
    assert first.cache is not None and first.cache.hits == 0
    assert second.cache is not None and second.cache.hits == 1
    assert losses[0] == losses[1] == losses[2]
    for a, b, c in zip(_weights(plain), _weights(first), _weights(second), strict=True):
        assert torch.equal(a, b) and torch.equal(b, c)
    # the optimiser goes on from the same state: round 2 computed matches round 2 after a hit
    more = _targets(plain, 1)
    plain.distil(more, 2)
    second.distil(more, 2)
    assert not second.last_reused  # nobody computed round 2 with these inputs yet
    assert all(torch.equal(a, b) for a, b in zip(_weights(plain), _weights(second), strict=True))


def test_other_targets_another_round_or_other_weights_are_other_entries(
    fixture_data: Path, tmp_path: Path
) -> None:
    base = _student(fixture_data, tmp_path)
    targets = _targets(base, 0)
    base.distil(targets, 1)
    for change in ("targets", "round", "weights"):
        other = _student(fixture_data, tmp_path)
        if change == "weights":
            with torch.no_grad():
                next(other.model.parameters()).add_(1e-6)
        t = _targets(base, 5) if change == "targets" else targets
        other.distil(t, 2 if change == "round" else 1)
        assert not other.last_reused, change
    assert len(list(tmp_path.glob("round-*.pt"))) == 4


def test_an_unreadable_entry_is_computed_again_with_a_warning(
    fixture_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _student(fixture_data, tmp_path)
    targets = _targets(first, 0)
    first.distil(targets, 1)
    (entry,) = tmp_path.glob("round-*.pt")
    entry.write_bytes(b"not a torch file")
    again = _student(fixture_data, tmp_path)
    with caplog.at_level(logging.WARNING, logger="server.distil_cache"):
        again.distil(targets, 1)
    assert not again.last_reused
    assert "unreadable" in caplog.text and str(entry) in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(_weights(first), _weights(again), strict=True))


def test_the_cache_is_off_by_default(fixture_data: Path, tmp_path: Path) -> None:
    """Without ``distil-cache`` a round is computed and nothing is written anywhere."""
    assert RunConfig().distil_cache == ""
    student = _student(fixture_data, None)
    assert student.cache is None
    before = set(tmp_path.rglob("*")) | set(fixture_data.rglob("*"))
    student.distil(_targets(student, 0), 1)
    assert not student.last_reused
    assert set(tmp_path.rglob("*")) | set(fixture_data.rglob("*")) == before
