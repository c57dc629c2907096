"""The ground segment's models: what keys their cache, and what a cold preparation shows."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from common.config import RunConfig
from common.federation import load_federation
from common.model_cache import cache_path
from common.preinstalled import cache_entry, preinstalled_student, recipe
from common.teacher_recipe import coarse_share, teacher_key, teacher_recipe
from common.training import one_cycle
from server.global_student import PLANNED_ROUNDS, GlobalStudent
from server.ground import preinstalled_archs, prepare


def _config(fixture_data: Path, **overrides: object) -> RunConfig:
    base = RunConfig(
        data_dir=str(fixture_data),
        num_clients=3,
        batch_size=8,
        teacher_epochs=1,
        global_pretrain_epochs=2,
        preinstall_epochs=1,
        seed=1101,  # no other test trains these models: the first preparation here is cold
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _keys(cfg: RunConfig) -> dict[str, str]:
    """The cache file of each ground model that ``cfg`` prepares."""
    fed = load_federation(cfg)
    keys = {
        "teacher": cache_path("teacher", fed, teacher_recipe(cfg)).name,
        "global": cache_path(
            f"global-{cfg.global_student}", fed, GlobalStudent(fed, cfg).pretrain_recipe()
        ).name,
    }
    for arch in ("tiny", "small", "medium"):
        name, entry = cache_entry(cfg, fed, arch)
        keys[arch] = cache_path(name, fed, entry).name
    return keys


def test_one_function_says_what_stands_for_the_teacher_in_the_students_cache_keys(
    fixture_data: Path,
) -> None:
    """The global student's and the pre-installed students' recipes name the teacher by
    :func:`teacher_key`; its list is the one the cached models were keyed by."""
    cfg = _config(
        fixture_data, teacher_epochs=3, learning_rate=0.01, batch_size=32, seed=5, precision="fp32"
    )
    cfg = replace(cfg, teacher_coarse_fraction=0.0)
    assert teacher_key(cfg) == [3, 0.01, 32, 5]  # epochs, rate, batch, seed: the cache's order
    assert teacher_key(replace(cfg, precision="bf16")) == [3, 0.01, 32, 5, "bf16"]
    # progressive resizing names its coarse epochs (0.56 of 3 epochs: the first one)
    coarse = replace(cfg, teacher_coarse_fraction=0.56)
    assert teacher_key(coarse) == [3, 0.01, 32, 5, "coarse1"]
    assert teacher_recipe(coarse)["coarse_epochs"] == 1
    assert "coarse_epochs" not in teacher_recipe(cfg)
    fed = load_federation(cfg)
    assert GlobalStudent(fed, cfg).pretrain_recipe()["teacher"] == teacher_key(cfg)
    for arch in ("tiny", "small", "medium"):
        assert recipe(cfg, arch)["teacher"] == teacher_key(cfg)  # common.preinstalled
    other = _config(fixture_data, teacher_epochs=4)
    assert teacher_key(other) != teacher_key(cfg)


def test_the_students_pre_training_runs_its_first_epochs_at_half_resolution(
    fixture_data: Path,
) -> None:
    """``student-coarse-fraction`` of the global student's pre-training epochs and of each
    pre-installed student's (rounded down, never every epoch) see half-size tiles, and the
    count keys their cache (absent at 0: the keys cached before the setting existed)."""
    assert [coarse_share(0.5, n) for n in (0, 1, 2, 3, 4, 5)] == [0, 0, 1, 1, 2, 2]
    assert coarse_share(0.99, 4) == 3 and coarse_share(0.0, 4) == 0
    cfg = _config(fixture_data, global_pretrain_epochs=4, preinstall_epochs=4)
    none = replace(cfg, student_coarse_fraction=0.0)
    fed = load_federation(cfg)
    student = GlobalStudent(fed, cfg)
    assert student.pretrain_recipe()["coarse_epochs"] == 2
    assert "coarse_epochs" not in GlobalStudent(fed, none).pretrain_recipe()
    assert student.settings.coarse_epochs == 0  # the rounds' passes are full size
    for arch in ("tiny", "medium"):
        assert recipe(cfg, arch)["coarse_epochs"] == 2
        assert "coarse_epochs" not in recipe(none, arch)
    assert _keys(cfg) != _keys(none)


def test_the_round_count_is_in_no_ground_models_cache_key(fixture_data: Path) -> None:
    base = _keys(_config(fixture_data, num_rounds=10))
    for rounds in (1, 3, 30):
        assert _keys(_config(fixture_data, num_rounds=rounds)) == base
    # The pre-installed student of the global student's architecture is its pre-training.
    assert base["small"] == base["global"]
    # Pre-training epochs shape the global student (and so that student) only; the seed
    # shapes every model.
    more = _keys(_config(fixture_data, global_pretrain_epochs=3))
    assert more["global"] != base["global"]
    assert more["small"] == more["global"]
    assert {k: v for k, v in more.items() if k not in ("global", "small")} == {
        k: v for k, v in base.items() if k not in ("global", "small")
    }
    # Without pre-training the global student starts untrained: its architecture's
    # pre-installed student is trained on its own recipe again.
    none = _keys(_config(fixture_data, global_pretrain_epochs=0))
    fed = load_federation(_config(fixture_data))
    assert (
        none["small"]
        == cache_path("preinstalled-small", fed, recipe(_config(fixture_data), "small")).name
    )
    seeded = _keys(_config(fixture_data, seed=7))
    assert all(seeded[k] != base[k] for k in base)
    teacher = _keys(_config(fixture_data, teacher_epochs=2))
    assert all(teacher[k] != base[k] for k in base)  # every student learns from the teacher


def test_the_default_round_count_keeps_the_one_cycle_over_the_whole_run(
    fixture_data: Path,
) -> None:
    cfg = _config(fixture_data, num_rounds=PLANNED_ROUNDS)
    student = GlobalStudent(load_federation(cfg), cfg)
    whole = student.pretrain_steps + PLANNED_ROUNDS * student.round_steps
    # The schedule (and the recipe's entry) of the run before pre-training was split off.
    assert student.pretrain_recipe()["schedule"] == [student.pretrain_steps, whole]
    for step in range(whole):
        assert student.learning_rate(step) == one_cycle(step, whole, cfg.learning_rate)
    # Another round count: the same pre-training, then the rest of the cycle, annealed.
    short = GlobalStudent(load_federation(replace(cfg, num_rounds=2)), replace(cfg, num_rounds=2))
    for step in range(short.pretrain_steps):
        assert short.learning_rate(step) == student.learning_rate(step)
    end = short.pretrain_steps
    assert short.learning_rate(short.total_steps - 1) < short.learning_rate(end)
    assert short.learning_rate(short.total_steps) == pytest.approx(cfg.learning_rate / 1e4)


def test_a_cold_preparation_shows_each_phase_and_another_round_count_reuses_it(
    fixture_data: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    cfg = _config(fixture_data, num_rounds=2)
    first = prepare(cfg, progress=True)
    bars = capsys.readouterr().err
    assert "teacher (ResNet-style, labels the reference set): epoch 1/1" in bars
    assert "global student (small CNN, the server's model the rounds refine): epoch 2/2" in bars
    for arch, role in (("tiny", "satellite"), ("medium", "ground-station")):
        assert f"pre-installed {arch} student (what {role} clients start from): epoch" in bars
    # One training serves the global student and the drones' small student.
    assert "pre-installed small student" not in bars
    assert set(first.preinstalled_accuracy) == {"tiny", "small", "medium"}
    assert first.preinstalled_accuracy["small"] == first.student_start_accuracy
    assert "preinstall-small" not in first.seconds
    drone = preinstalled_student(cfg, first.fed, "small")
    for a, b in zip(
        drone.state_dict().values(), first.student.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    log = caplog.text
    n_archive = len(first.fed.partition.archive)
    assert "teacher: not in the cache yet, training the ResNet-style teacher" in log
    assert f"on {n_archive} labelled archive tiles for 1 epoch;" in log
    assert "global-small: not in the cache yet, training the small global student" in log
    assert "preinstalled-medium: not in the cache yet" in log
    assert "for the next run)" in log

    caplog.clear()
    seen: list[str] = []  # the log when on_data is called: once, before the teacher is looked up
    again = prepare(replace(cfg, num_rounds=9), on_data=lambda: seen.append(caplog.text))
    assert len(seen) == 1 and "teacher" not in seen[0]  # progress off: library default
    assert capsys.readouterr().err == ""
    assert "not in the cache yet" not in caplog.text
    assert "preinstalled-small" not in caplog.text
    for name in ("teacher", "global-small", "preinstalled-tiny", "preinstalled-medium"):
        assert f"{name}: found in the cache" in caplog.text
    assert again.teacher_accuracy == first.teacher_accuracy
    assert again.student_start_accuracy == first.student_start_accuracy
    for a, b in zip(
        first.student.model.state_dict().values(),
        again.student.model.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_only_the_roles_a_run_has_get_pre_installed_students(fixture_data: Path) -> None:
    cfg = _config(fixture_data)
    assert preinstalled_archs(cfg) == ["medium", "small", "tiny"]  # three clients, three roles
    # Clients take the roles in turn: two clients are a satellite and a drone.
    assert preinstalled_archs(replace(cfg, num_clients=2)) == ["small", "tiny"]
    assert preinstalled_archs(replace(cfg, roles="ground-station")) == ["medium"]
    assert preinstalled_archs(replace(cfg, student="medium")) == ["medium"]
    # Clients that start from scratch need none, unless statistics need the shared backbone.
    assert preinstalled_archs(replace(cfg, client_init="scratch")) == []
    assert preinstalled_archs(replace(cfg, client_init="scratch", client_statistics=1)) == ["tiny"]
    # The FedAvg baseline starts every client from its one student.
    assert preinstalled_archs(replace(cfg, method="fedavg")) == ["tiny"]
    assert preinstalled_archs(replace(cfg, method="fedavg", student="small")) == ["small"]
