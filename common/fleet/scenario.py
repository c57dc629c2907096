"""Fleet scenarios: ground stations, satellites and drones, parsed once from TOML.

A scenario file (``common/fleet/scenarios/<name>.toml``, or any path) declares who is in the
fleet (``[[stations]]``, ``[satellites]`` from a TLE file or a Walker constellation,
``[drones]``) and when each member can talk to the ground; ``[data]`` gives each role's share of
the private tiles. The format, key by key, is in docs/fleets.md ("Scenario files").

Clients are numbered satellites first, then drones, then ground stations: scenario client
``i`` is the simulation's partition ``i``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import ConfigError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
ROLE_ORDER = ("satellite", "drone", "ground-station")


@dataclass(frozen=True)
class Station:
    name: str
    lat_deg: float
    lon_deg: float
    min_elevation_deg: float


@dataclass(frozen=True)
class Walker:
    """Walker delta constellation: ``planes`` x ``per_plane`` satellites, phasing ``f``."""

    planes: int
    per_plane: int
    altitude_km: float
    inclination_deg: float
    phasing: int

    @property
    def total(self) -> int:
        return self.planes * self.per_plane


@dataclass(frozen=True)
class Satellites:
    link_bytes_per_second: float
    walker: Walker | None = None
    tle: tuple[tuple[str, str, str], ...] = ()  # (name, line 1, line 2)

    @property
    def count(self) -> int:
        return self.walker.total if self.walker else len(self.tle)


@dataclass(frozen=True)
class Drones:
    count: int
    flight_windows: tuple[tuple[float, float], ...]  # daily (start, end) hours UTC
    sync_minutes: float
    stagger_minutes: float
    link_bytes_per_second: float


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    start: datetime
    period_hours: float
    step_seconds: float
    train_minutes: float
    stations: tuple[Station, ...]
    satellites: Satellites
    drones: Drones
    shares: dict[str, float]

    @property
    def num_clients(self) -> int:
        return self.satellites.count + self.drones.count + len(self.stations)

    def role_of(self, client: int) -> str:
        """Role of scenario client ``client`` (satellites, then drones, then stations)."""
        if not 0 <= client < self.num_clients:
            raise ConfigError(
                f"client {client} is not in scenario {self.name!r} ({self.num_clients} clients): "
                f"set num-clients = {self.num_clients}"
            )
        if client < self.satellites.count:
            return "satellite"
        if client < self.satellites.count + self.drones.count:
            return "drone"
        return "ground-station"

    def roles(self) -> list[str]:
        return [self.role_of(i) for i in range(self.num_clients)]


def resolve(name_or_path: str) -> Path:
    """A scenario path: an existing file, else ``common/fleet/scenarios/<name>.toml``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    shipped = SCENARIO_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
    raise ConfigError(f"scenario {name_or_path!r} not found: pass a TOML file or one of {names}")


class _Reader:
    """Typed field access that names the file and the field in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    def get(
        self, table: dict[str, Any], key: str, where: str, kind: type, default: Any = None
    ) -> Any:
        if key not in table:
            if default is None:
                raise self.fail(f"{where}.{key}", "missing")
            return default
        value = table[key]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(f"{where}.{key}", f"must be a {kind.__name__}, got {value!r}")
        return value

    def positive(self, table: dict[str, Any], key: str, where: str, kind: type) -> Any:
        value = self.get(table, key, where, kind)
        if value <= 0:
            raise self.fail(f"{where}.{key}", f"must be > 0, got {value!r}")
        return value


def load_scenario(name_or_path: str) -> Scenario:
    path = resolve(name_or_path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the scenario: {exc}") from exc
    r = _Reader(path)
    head = r.get(doc, "scenario", "", dict)
    try:
        start = datetime.fromisoformat(r.get(head, "start", "scenario", str))
    except ValueError:
        raise r.fail("scenario.start", "must be an ISO 8601 UTC time") from None
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    stations = tuple(_station(r, s, i) for i, s in enumerate(r.get(doc, "stations", "", list)))
    if not stations:
        raise r.fail("stations", "a fleet needs at least one ground station")
    if len({s.name for s in stations}) != len(stations):
        raise r.fail("stations", "station names must be unique")
    return Scenario(
        name=r.get(head, "name", "scenario", str),
        path=path,
        start=start,
        period_hours=r.positive(head, "period-hours", "scenario", float),
        step_seconds=r.positive(head, "step-seconds", "scenario", float),
        train_minutes=r.get(head, "train-minutes", "scenario", float, 10.0),
        stations=stations,
        satellites=_satellites(r, r.get(doc, "satellites", "", dict)),
        drones=_drones(r, doc.get("drones", {"count": 0})),
        shares=_shares(r, r.get(doc, "data", "", dict)),
    )


def _station(r: _Reader, table: Any, i: int) -> Station:
    where = f"stations[{i}]"
    if not isinstance(table, dict):
        raise r.fail(where, "must be a table")
    lat = r.get(table, "lat", where, float)
    lon = r.get(table, "lon", where, float)
    elev = r.get(table, "min-elevation-deg", where, float)
    if not -90 <= lat <= 90:
        raise r.fail(f"{where}.lat", f"must be in [-90, 90], got {lat}")
    if not -180 <= lon <= 360:
        raise r.fail(f"{where}.lon", f"must be in [-180, 360], got {lon}")
    if not 0 <= elev < 90:
        raise r.fail(f"{where}.min-elevation-deg", f"must be in [0, 90), got {elev}")
    return Station(r.get(table, "name", where, str), lat, lon, elev)


def _satellites(r: _Reader, table: dict[str, Any]) -> Satellites:
    rate = r.positive(table, "link-bytes-per-second", "satellites", float)
    has_walker, has_tle = "walker" in table, "tle-file" in table
    if has_walker == has_tle:
        raise r.fail("satellites", "give exactly one of tle-file or [satellites.walker]")
    if has_tle:
        tle_path = r.path.parent / r.get(table, "tle-file", "satellites", str)
        return Satellites(rate, tle=read_tle(tle_path))
    w = r.get(table, "walker", "satellites", dict)
    walker = Walker(
        planes=r.positive(w, "planes", "satellites.walker", int),
        per_plane=r.positive(w, "per-plane", "satellites.walker", int),
        altitude_km=r.positive(w, "altitude-km", "satellites.walker", float),
        inclination_deg=r.get(w, "inclination-deg", "satellites.walker", float),
        phasing=r.get(w, "phasing", "satellites.walker", int, 0),
    )
    if not 0 <= walker.inclination_deg <= 180:
        raise r.fail("satellites.walker.inclination-deg", "must be in [0, 180]")
    if not 0 <= walker.phasing < walker.planes:
        raise r.fail("satellites.walker.phasing", f"must be in [0, planes={walker.planes})")
    return Satellites(rate, walker=walker)


def _drones(r: _Reader, table: Any) -> Drones:
    if not isinstance(table, dict):
        raise r.fail("drones", "must be a table")
    count = r.get(table, "count", "drones", int)
    if count < 0:
        raise r.fail("drones.count", f"must be >= 0, got {count}")
    if count == 0:
        return Drones(0, (), 0.0, 0.0, 1.0)
    windows = []
    for i, w in enumerate(r.get(table, "flight-windows", "drones", list)):
        ok = isinstance(w, list) and len(w) == 2 and all(isinstance(x, int | float) for x in w)
        if not ok or not 0 <= w[0] < w[1] <= 24:
            raise r.fail(f"drones.flight-windows[{i}]", f"must be [start, end] hours, got {w!r}")
        windows.append((float(w[0]), float(w[1])))
    if not windows:
        raise r.fail("drones.flight-windows", "give at least one daily window")
    return Drones(
        count=count,
        flight_windows=tuple(sorted(windows)),
        sync_minutes=r.positive(table, "sync-minutes", "drones", float),
        stagger_minutes=r.get(table, "stagger-minutes", "drones", float, 0.0),
        link_bytes_per_second=r.positive(table, "link-bytes-per-second", "drones", float),
    )


def _shares(r: _Reader, table: dict[str, Any]) -> dict[str, float]:
    unknown = sorted(set(table) - set(ROLE_ORDER))
    if unknown:
        raise r.fail("data", f"unknown roles {', '.join(unknown)}: use {', '.join(ROLE_ORDER)}")
    shares = {role: r.get(table, role, "data", float, 0.0) for role in ROLE_ORDER}
    if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
        raise r.fail("data", f"role shares must be >= 0 and sum to 1, got {shares}")
    return shares


def read_tle(path: Path) -> tuple[tuple[str, str, str], ...]:
    """Satellites of a TLE file: optional name lines, then lines ``1 ...`` and ``2 ...``."""
    try:
        lines = [ln.rstrip() for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the TLE file: {exc}") from exc
    out: list[tuple[str, str, str]] = []
    i = 0
    while i < len(lines):
        name = ""
        if not lines[i].startswith("1 "):
            name, i = lines[i].strip(), i + 1
        if i + 1 >= len(lines) or not (lines[i].startswith("1 ") and lines[i + 1].startswith("2 ")):
            raise ConfigError(f"{path}: line {i + 1}: expected a TLE pair (lines '1 ...', '2 ...')")
        out.append((name or f"sat-{len(out)}", lines[i], lines[i + 1]))
        i += 2
    if not out:
        raise ConfigError(f"{path}: no satellites in the TLE file")
    return tuple(out)
