"""Orbits and contact windows against geometry one can check by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from common.fleet import orbits
from common.fleet.contacts import contact_plan, drone_windows
from common.fleet.orbits import (
    EARTH_RADIUS_KM,
    MU_KM3_S2,
    Window,
    contact_windows,
    gmst,
    merge,
    satellite_contacts,
    walker_satellites,
)
from common.fleet.scenario import Drones, Station, Walker, load_scenario

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EARTH_RATE = 7.2921159e-5  # rad/s


@pytest.mark.parametrize(("altitude", "min_elevation"), [(550.0, 10.0), (1200.0, 5.0)])
def test_equatorial_pass_duration_matches_geometry(altitude: float, min_elevation: float) -> None:
    """Equatorial circular prograde orbit over an equatorial station: each pass spans the
    central angle 2 lambda, lambda = acos(R cos e / (R + h)) - e, swept at the satellite's
    rate minus the Earth's rotation; passes repeat every 2 pi / (n - omega_earth)."""
    sat = walker_satellites(Walker(1, 1, altitude, 0.0, 0), EPOCH)[0]
    station = Station("equator", 0.0, 30.0, min_elevation)
    windows = contact_windows(sat, station, EPOCH, 12.0, 30.0)
    r, eps = EARTH_RADIUS_KM, math.radians(min_elevation)
    lam = math.acos(r * math.cos(eps) / (r + altitude)) - eps
    rate = math.sqrt(MU_KM3_S2 / (r + altitude) ** 3) - EARTH_RATE
    expected_minutes = 2 * lam / rate / 60
    expected_revisit = 2 * math.pi / rate / 3600
    full = [w for w in windows if w.start > 0 and w.end < 12.0]
    assert len(full) >= 4
    for w in full:
        assert w.hours * 60 == pytest.approx(expected_minutes, rel=0.02)
        assert w.max_elevation > 75  # passes straight overhead, sampled every 30 s
    gaps = np.diff([w.start for w in full])
    np.testing.assert_allclose(gaps, expected_revisit, rtol=0.02)


def test_station_out_of_reach_sees_nothing() -> None:
    sat = walker_satellites(Walker(1, 1, 550.0, 0.0, 0), EPOCH)[0]
    assert contact_windows(sat, Station("pole", 80.0, 0.0, 10.0), EPOCH, 6.0, 30.0) == []


def test_gmst_at_j2000() -> None:
    # GMST at 2000-01-01 12:00 UT1 is 280.46061837 degrees
    assert math.degrees(gmst(np.array([2451545.0]))[0]) == pytest.approx(280.46061837, abs=1e-6)


def test_walker_counts_planes_raan_and_phasing() -> None:
    walker = Walker(planes=4, per_plane=3, altitude_km=550.0, inclination_deg=53.0, phasing=1)
    sats = walker_satellites(walker, EPOCH)
    assert len(sats) == 12 == walker.total
    raan = np.degrees([s.nodeo for s in sats]).reshape(4, 3)
    np.testing.assert_allclose(raan, np.repeat([[0.0], [90.0], [180.0], [270.0]], 3, axis=1))
    anomaly = np.degrees([s.mo for s in sats]).reshape(4, 3)
    np.testing.assert_allclose(np.diff(anomaly[0]), 120.0)  # evenly spaced in a plane
    np.testing.assert_allclose(anomaly[1, 0] - anomaly[0, 0], 360.0 * 1 / 12)  # f = 1
    np.testing.assert_allclose(np.degrees([s.inclo for s in sats]), 53.0)
    period_min = 2 * math.pi / sats[0].no_kozai
    assert period_min == pytest.approx(95.6, abs=0.3)  # 550 km LEO


def test_merge_joins_overlapping_windows() -> None:
    merged = merge([Window(1.0, 2.0, 30.0), Window(0.0, 0.5, 10.0), Window(1.5, 3.0, 60.0)])
    assert merged == [Window(0.0, 0.5, 10.0), Window(1.0, 3.0, 60.0)]


def test_contacts_are_cached_by_orbital_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKYDISTILL_CACHE", str(tmp_path))
    scenario = load_scenario("small")
    first = satellite_contacts(scenario)
    assert len(first) == 4 and all(first)  # every satellite passes over Matera in a day
    for sat in first:
        for w in sat:
            assert 0 <= w.start < w.end <= scenario.period_hours and w.hours < 0.25
    cached = list((tmp_path / "contacts").glob("small-*.json"))
    assert len(cached) == 1

    def no_propagation(*_: object) -> list[Window]:
        raise AssertionError("propagated again despite the cache")

    monkeypatch.setattr(orbits, "contact_windows", no_propagation)
    assert satellite_contacts(scenario) == first


def test_contact_plan_orders_satellites_drones_stations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKYDISTILL_CACHE", str(tmp_path))
    scenario = load_scenario("small")
    plan = contact_plan(scenario, payload_bytes=250_000 * 60)  # a minute over a drone link
    assert plan.num_clients == 7
    assert plan.transfer[4] == pytest.approx(1 / 60) and plan.transfer[6] == 0.0
    assert plan.next_contact(6, 13.7) == 13.7  # the ground station
    assert plan.next_contact(4, 0.0) == 9.0  # drone 0 syncs after landing at 09:00
    assert plan.next_contact(5, 0.0) == 9.5  # drone 1: staggered by 30 minutes


def test_drone_sync_windows_repeat_daily() -> None:
    drones = Drones(3, ((6.0, 9.0), (15.0, 18.0)), 20.0, 30.0, 1.0)
    w = drone_windows(drones, 2, 48.0)
    assert w[:4] == [(10.0, 10 + 1 / 3), (19.0, 19 + 1 / 3), (34.0, 34 + 1 / 3), (43.0, 43 + 1 / 3)]
