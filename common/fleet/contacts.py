"""A scenario's contact plan: every client's windows to the ground, in simulated hours.

Satellites: their passes over any station (``common.fleet.orbits``). Drones: after each daily
flight window they land and sync for ``sync-minutes`` (drone ``i`` shifted by
``(i % 4) * stagger-minutes``). Ground stations: always in contact. A contact is usable only
if it lasts long enough to move ``payload_bytes`` over the client's link budget.
"""

from __future__ import annotations

import math

from common.fleet.orbits import satellite_contacts
from common.fleet.scenario import Drones, Scenario
from common.fleet.schedule import ALWAYS, ContactPlan


def drone_windows(drones: Drones, index: int, period_hours: float) -> list[tuple[float, float]]:
    shift = (index % 4) * drones.stagger_minutes / 60.0
    sync = drones.sync_minutes / 60.0
    out = []
    for day in range(math.ceil(period_hours / 24.0) + 1):
        for _, land in drones.flight_windows:
            start = day * 24.0 + land + shift
            if start < period_hours:
                out.append((start, min(start + sync, period_hours)))
    return out


def contact_plan(scenario: Scenario, payload_bytes: float = 0.0) -> ContactPlan:
    """Windows of scenario clients in order (satellites, drones, stations)."""
    windows: list[list[tuple[float, float]]] = [
        [(w.start, w.end) for w in sat] for sat in satellite_contacts(scenario)
    ]
    windows += [
        drone_windows(scenario.drones, i, scenario.period_hours)
        for i in range(scenario.drones.count)
    ]
    windows += [list(ALWAYS) for _ in scenario.stations]
    rates = (
        [scenario.satellites.link_bytes_per_second] * scenario.satellites.count
        + [scenario.drones.link_bytes_per_second] * scenario.drones.count
        + [math.inf] * len(scenario.stations)
    )
    return ContactPlan(windows, [payload_bytes / r / 3600.0 for r in rates])
