"""A simulation whose SuperNodes do not match num-clients says so once, with the fix."""

from __future__ import annotations

import logging

import pytest

from server.nodes import check_simulated_nodes, node_count_message
from tests.server.loopback import simulation_grid


def test_matching_counts_are_fine() -> None:
    assert node_count_message(20, 20) is None


def test_fewer_nodes_name_the_unused_shards_and_the_fix() -> None:
    text = node_count_message(2, 20)
    assert text is not None
    assert "the shards of clients 0-1 are trained on" in text
    assert "the shards of clients 2-19 are never used (18 of 20)" in text
    assert '--federation-config "num-supernodes=20"' in text


def test_more_nodes_name_the_nodes_without_a_shard() -> None:
    text = node_count_message(5, 3)
    assert text is not None
    assert "SuperNodes with partition-id 3-4 have no shard" in text
    assert '"num-supernodes=3"' in text


def test_a_real_simulation_grid_with_too_few_nodes_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    grid = simulation_grid(2)
    with caplog.at_level(logging.WARNING, logger="server.nodes"):
        assert check_simulated_nodes(grid, 4, wait=5.0, poll=0.05) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "the shards of clients 2-3 are never used (2 of 4)" in warnings[0].getMessage()


def test_a_real_simulation_grid_of_the_right_size_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="server.nodes"):
        assert check_simulated_nodes(simulation_grid(3), 3) == 3
    assert not [r for r in caplog.records if r.name == "server.nodes"]
