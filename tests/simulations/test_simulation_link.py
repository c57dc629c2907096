"""simulation_link: one SuperLink, the flwr connection to it, runs on it, and its stop; checked
with a stand-in SuperLink (the integration tests start real ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from common.config import RunConfig
from common.settings import PROJECT_ROOT
from simulations import simulate


class FakeSuperLink:
    made: ClassVar[list[FakeSuperLink]] = []

    def __init__(self, home: Path, *, env: dict[str, str] | None = None) -> None:
        self.home, self.env = home, env
        self.address = "127.0.0.1:4321"
        self.launched = self.running = False
        FakeSuperLink.made.append(self)

    def launch(self) -> None:
        self.launched = True

    def wait_ready(self) -> FakeSuperLink:
        assert self.launched
        self.running = True
        return self

    def stop(self) -> None:
        self.running = False


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    FakeSuperLink.made = []
    monkeypatch.setattr(simulate, "SuperLink", FakeSuperLink)
    calls: list[dict[str, Any]] = []

    def run_federation(home: Path, cfg: RunConfig, out: Path, **kw: Any) -> dict[str, Any]:
        calls.append({"home": home, "cfg": cfg, "out": out, **kw})
        assert FakeSuperLink.made[-1].running  # runs go to a live SuperLink
        return {"rounds": [], "out": str(out)}

    monkeypatch.setattr(simulate, "run_federation", run_federation)
    return calls


def test_runs_go_to_the_superlink_that_flwr_is_connected_to(
    runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    home, cfg = tmp_path / "flwr-home", RunConfig()
    with simulate.simulation_link(home, env={"RAY_ADDRESS": "local"}) as sim:
        (link,) = FakeSuperLink.made
        assert (link.home, link.env, sim.home) == (home, {"RAY_ADDRESS": "local"}, home)
        connection = (home / "config.toml").read_text()
        assert 'address = "127.0.0.1:4321"' in connection and "insecure = true" in connection
        assert sim.run(cfg, tmp_path / "a", progress=False) == {
            "rounds": [],
            "out": f"{tmp_path}/a",
        }
        sim.run(cfg, tmp_path / "b", client_cpus=2)
    assert not link.running
    assert [(c["home"], c["out"]) for c in runs] == [(home, tmp_path / "a"), (home, tmp_path / "b")]
    first, second = runs
    assert (first["progress"], first["client_cpus"], first["attached"]) == (False, 1, False)
    assert (second["progress"], second["client_cpus"]) == (True, 2)
    assert first["app_dir"] == PROJECT_ROOT


def test_attached_runs_say_so(runs: list[dict[str, Any]], tmp_path: Path) -> None:
    with simulate.simulation_link(tmp_path, env=simulate.ray_env("auto"), attached=True) as sim:
        sim.run(RunConfig(), tmp_path / "run")
    assert FakeSuperLink.made[0].env == {"RAY_ADDRESS": "auto"}
    assert runs[0]["attached"] is True


def test_the_superlink_stops_when_a_run_fails(runs: list[dict[str, Any]], tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), simulate.simulation_link(tmp_path):
        assert FakeSuperLink.made[0].running
        raise RuntimeError("boom")
    assert not FakeSuperLink.made[0].running


def test_without_waiting_the_link_is_launched_and_its_runs_wait_for_it(
    runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    """simulate() launches the SuperLink, prepares the ground while it starts, then runs."""
    with simulate.simulation_link(tmp_path, wait=False) as sim:
        (link,) = FakeSuperLink.made
        assert link.launched and not link.running  # launched, not waited for
        assert 'address = "127.0.0.1:4321"' in (tmp_path / "config.toml").read_text()
        sim.run(RunConfig(), tmp_path / "run")  # run_federation asserts a live SuperLink
    assert len(runs) == 1 and not link.running
