"""Orbits and ground-station contact windows, propagated with SGP4.

Model (good to a fraction of a degree of elevation, plenty for scheduling):

- satellites: SGP4 (``sgp4``, WGS-72 constants) from a TLE, or from Walker-delta mean elements
  made with ``Satrec.sgp4init`` (circular, mean motion from Kepler's third law);
- TEME -> Earth-fixed: one rotation about z by the Greenwich mean sidereal time (IAU 1982
  GMST; polar motion and the equation of the equinoxes are ignored, < 1 arc-second);
- stations: on a spherical Earth of radius 6378.137 km, local vertical = radial direction
  (versus the WGS-84 geodetic normal the elevation differs by at most ~0.2 degrees);
- windows: elevation sampled every ``step`` seconds, all rising and setting edges refined by
  bisection to ~0.01 s; the maximum elevation is the largest sample in the window.

Results are cached as JSON under ``cache_dir()/contacts``, keyed by a hash of the orbital
content (elements or TLE lines, stations, start), the period and the step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sgp4.api import WGS72, Satrec, jday

from common.atomic import atomic_write
from common.fleet.scenario import Scenario, Station, Walker
from common.settings import cache_dir

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6378.137
MU_KM3_S2 = 398600.8  # WGS-72, the constants SGP4 uses
SGP4_EPOCH_JD = 2433281.5  # sgp4init epochs count days from 1949 December 31 00:00 UT
REFINE_STEPS = 12  # bisection steps per window edge: step / 4096
CACHE_VERSION = 1


@dataclass(frozen=True)
class Window:
    """A contact: hours since the scenario start, and the highest elevation in degrees."""

    start: float
    end: float
    max_elevation: float = 90.0

    @property
    def hours(self) -> float:
        return self.end - self.start


def julian(when: datetime) -> tuple[float, float]:
    return jday(when.year, when.month, when.day, when.hour, when.minute, when.second)  # type: ignore[no-any-return]


def gmst(jd: np.ndarray) -> np.ndarray:
    """Greenwich mean sidereal time (radians) at UT1 Julian dates ``jd`` (IAU 1982)."""
    t = (jd - 2451545.0) / 36525.0
    seconds = (
        67310.54841 + (876600.0 * 3600.0 + 8640184.812866) * t + 0.093104 * t**2 - 6.2e-6 * t**3
    )
    return np.mod(np.radians(seconds / 240.0), 2 * np.pi)


def walker_satellites(walker: Walker, epoch: datetime) -> list[Satrec]:
    """Walker delta i:t/p/f: plane ``j`` has RAAN ``360 j / p``; satellite ``k`` of it has
    mean anomaly ``360 k / s + 360 f j / t`` (circular orbits, argument of perigee 0)."""
    jd, fr = julian(epoch)
    a = EARTH_RADIUS_KM + walker.altitude_km
    n = math.sqrt(MU_KM3_S2 / a**3) * 60.0  # rad / minute
    sats = []
    for j in range(walker.planes):
        for k in range(walker.per_plane):
            raan = 2 * math.pi * j / walker.planes
            anomaly = 2 * math.pi * (k / walker.per_plane + walker.phasing * j / walker.total)
            sat = Satrec()
            sat.sgp4init(
                WGS72,
                "i",
                j * walker.per_plane + k + 1,
                jd + fr - SGP4_EPOCH_JD,
                0.0,  # bstar: no drag
                0.0,
                0.0,
                0.0,  # circular
                0.0,
                math.radians(walker.inclination_deg),
                anomaly % (2 * math.pi),
                n,
                raan,
            )
            sats.append(sat)
    return sats


def scenario_satellites(scenario: Scenario) -> list[Satrec]:
    sats = scenario.satellites
    if sats.walker is not None:
        return walker_satellites(sats.walker, scenario.start)
    return [Satrec.twoline2rv(l1, l2) for _, l1, l2 in sats.tle]


def station_position(station: Station) -> np.ndarray:
    """Earth-fixed position (km) of ``station`` on the spherical Earth."""
    lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
    return EARTH_RADIUS_KM * np.array(
        [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)]
    )


def elevation(sat: Satrec, station: Station, jd0: float, hours: np.ndarray) -> np.ndarray:
    """Elevation (degrees) of ``sat`` seen from ``station`` at ``hours`` after ``jd0``."""
    hours = np.atleast_1d(np.asarray(hours, dtype=np.float64))
    day = np.floor(jd0 - 0.5) + 0.5
    fr = (jd0 - day) + hours / 24.0
    err, r, _ = sat.sgp4_array(np.full_like(fr, day), fr)
    if np.any(err):
        raise ValueError(f"SGP4 failed for satellite {sat.satnum} (error {int(err.max())})")
    theta = gmst(day + fr)
    c, s = np.cos(theta), np.sin(theta)
    ecef = np.stack([c * r[:, 0] + s * r[:, 1], -s * r[:, 0] + c * r[:, 1], r[:, 2]], axis=1)
    site = station_position(station)
    d = ecef - site
    up = site / np.linalg.norm(site)
    out: np.ndarray = np.degrees(np.arcsin((d @ up) / np.linalg.norm(d, axis=1)))
    return out


def _edges(
    sat: Satrec, station: Station, jd0: float, below: np.ndarray, above: np.ndarray
) -> np.ndarray:
    """Times between each ``below`` (under the mask) and ``above`` where elevation crosses
    the mask, by bisection on all edges at once."""
    below, above = below.astype(np.float64), above.astype(np.float64)
    for _ in range(REFINE_STEPS):
        mid = 0.5 * (below + above)
        up = elevation(sat, station, jd0, mid) >= station.min_elevation_deg
        above = np.where(up, mid, above)
        below = np.where(up, below, mid)
    out: np.ndarray = 0.5 * (below + above)
    return out


def contact_windows(
    sat: Satrec, station: Station, start: datetime, period_hours: float, step_seconds: float
) -> list[Window]:
    """Passes of ``sat`` over ``station`` above its minimum elevation, in hours from start."""
    jd, fr = julian(start)
    jd0 = jd + fr
    step = step_seconds / 3600.0
    hours = np.arange(0.0, period_hours + step / 2, step)
    elev = elevation(sat, station, jd0, hours)
    up = (elev >= station.min_elevation_deg).astype(np.int8)
    change = np.diff(np.concatenate([[0], up, [0]]))
    first = np.flatnonzero(change == 1)  # first sample above the mask of each pass
    last = np.flatnonzero(change == -1) - 1  # last sample above it
    if len(first) == 0:
        return []
    rise_ok, set_ok = first > 0, last < len(hours) - 1  # passes cut by the period stay cut
    begin, end = hours[first].copy(), hours[last].copy()
    if rise_ok.any():
        f = first[rise_ok]
        begin[rise_ok] = _edges(sat, station, jd0, hours[f - 1], hours[f])
    if set_ok.any():
        g = last[set_ok]
        end[set_ok] = _edges(sat, station, jd0, hours[g + 1], hours[g])
    return [
        Window(float(b), float(e), float(elev[i : j + 1].max()))
        for b, e, i, j in zip(begin, end, first, last, strict=True)
    ]


def merge(windows: list[Window]) -> list[Window]:
    """Union of overlapping windows (a satellite seen by two stations at once)."""
    out: list[Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if out and w.start <= out[-1].end:
            prev = out[-1]
            out[-1] = Window(
                prev.start, max(prev.end, w.end), max(prev.max_elevation, w.max_elevation)
            )
        else:
            out.append(w)
    return out


def orbital_key(scenario: Scenario) -> str:
    sats = scenario.satellites
    content = {
        "version": CACHE_VERSION,
        "start": scenario.start.isoformat(),
        "period": scenario.period_hours,
        "step": scenario.step_seconds,
        "walker": sats.walker.__dict__ if sats.walker else None,
        "tle": [[l1, l2] for _, l1, l2 in sats.tle],
        "stations": [[s.lat_deg, s.lon_deg, s.min_elevation_deg] for s in scenario.stations],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def satellite_contacts(scenario: Scenario, *, use_cache: bool = True) -> list[list[Window]]:
    """Per satellite (scenario order), its contact windows with any station, merged."""
    path = cache_dir() / "contacts" / f"{scenario.name}-{orbital_key(scenario)}.json"
    if use_cache and path.is_file():
        cached = json.loads(path.read_text())
        return [[Window(*w) for w in sat] for sat in cached]
    out = []
    for sat in scenario_satellites(scenario):
        windows = [
            w
            for station in scenario.stations
            for w in contact_windows(
                sat, station, scenario.start, scenario.period_hours, scenario.step_seconds
            )
        ]
        out.append(merge(windows))
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps([[[w.start, w.end, w.max_elevation] for w in sat] for sat in out])
        atomic_write(path, lambda fh: fh.write(text.encode()))
        log.info("contact windows of %s cached in %s", scenario.name, path)
    return out
