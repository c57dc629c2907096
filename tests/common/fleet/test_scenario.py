"""Scenario files: the shipped ones parse, and mistakes name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from common.fleet.scenario import SCENARIO_DIR, load_scenario, read_tle

ISS = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9005\n"
    "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391 34567\n"
)


@pytest.mark.parametrize(
    ("name", "sats", "drones", "stations"),
    [("small", 4, 2, 1), ("leo50", 50, 20, 3), ("fleet10k", 1000, 8990, 10)],
)
def test_shipped_scenarios(name: str, sats: int, drones: int, stations: int) -> None:
    s = load_scenario(name)
    assert (s.satellites.count, s.drones.count, len(s.stations)) == (sats, drones, stations)
    assert s.num_clients == sats + drones + stations
    assert abs(sum(s.shares.values()) - 1) < 1e-9
    roles = s.roles()
    assert roles[0] == "satellite" and roles[sats] == "drone" and roles[-1] == "ground-station"
    assert roles.count("drone") == drones


def _edit(tmp_path: Path, old: str, new: str) -> Path:
    text = (SCENARIO_DIR / "small.toml").read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("lat = 40.65", "lat = 140.65", "stations[0].lat"),
        ("lat = 40.65", 'lat = "north"', "stations[0].lat"),
        ("min-elevation-deg = 10.0", "", "stations[0].min-elevation-deg: missing"),
        ("planes = 2", "planes = 0", "satellites.walker.planes"),
        ("phasing = 1", "phasing = 5", "satellites.walker.phasing"),
        ("period-hours = 24.0", "period-hours = -1.0", "scenario.period-hours"),
        ("[[6.0, 9.0], [15.0, 18.0]]", "[[9.0, 6.0]]", "drones.flight-windows[0]"),
        ("ground-station = 0.2", "ground-station = 0.5", "data"),
        ("drone = 0.3", "pilot = 0.3", "unknown roles pilot"),
        ("[satellites]\n", '[satellites]\ntle-file = "x.tle"\n', "exactly one of"),
        ('start = "2026-01-01T00:00:00Z"', 'start = "yesterday"', "scenario.start"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _edit(tmp_path, old, new)
    with pytest.raises(ConfigError, match="bad.toml") as info:
        load_scenario(str(path))
    assert field in str(info.value)


def test_unknown_name_lists_shipped_scenarios() -> None:
    with pytest.raises(ConfigError, match="leo50"):
        load_scenario("no-such-fleet")


def test_tle_satellites(tmp_path: Path) -> None:
    (tmp_path / "sats.tle").write_text(ISS + ISS.replace("ISS (ZARYA)", "TWIN"))
    text = (SCENARIO_DIR / "small.toml").read_text()
    head, _, rest = text.partition("[satellites.walker]")
    tail = rest[rest.index("[drones]") :]
    path = tmp_path / "tle.toml"
    path.write_text(head.replace("[satellites]", '[satellites]\ntle-file = "sats.tle"') + tail)
    s = load_scenario(str(path))
    assert s.satellites.count == 2 and s.satellites.tle[1][0] == "TWIN"
    assert s.num_clients == 2 + 2 + 1


def test_tle_without_line_two_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.tle"
    path.write_text(ISS.splitlines()[0] + "\n" + ISS.splitlines()[1] + "\n")
    with pytest.raises(ConfigError, match=r"broken.tle: line 2"):
        read_tle(path)
