"""Role profiles: which student and how much local work each kind of platform does."""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import ConfigError


@dataclass(frozen=True)
class RoleProfile:
    name: str
    student: str  # model zoo name
    local_epochs: int
    learning_rate: float = 3e-3


PROFILES: dict[str, RoleProfile] = {
    "satellite": RoleProfile("satellite", student="tiny", local_epochs=1),
    "drone": RoleProfile("drone", student="small", local_epochs=1),
    "ground-station": RoleProfile("ground-station", student="medium", local_epochs=1),
}


def profile(role: str) -> RoleProfile:
    try:
        return PROFILES[role]
    except KeyError:
        raise ConfigError(f"unknown role {role!r}: choose one of {', '.join(PROFILES)}") from None
