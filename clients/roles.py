"""Role profiles: which student each kind of platform trains."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ROLE_STUDENTS
from common.errors import ConfigError


@dataclass(frozen=True)
class RoleProfile:
    name: str
    student: str  # model zoo name


PROFILES: dict[str, RoleProfile] = {
    role: RoleProfile(role, student=arch) for role, arch in ROLE_STUDENTS.items()
}


def profile(role: str) -> RoleProfile:
    try:
        return PROFILES[role]
    except KeyError:
        raise ConfigError(f"unknown role {role!r}: choose one of {', '.join(PROFILES)}") from None
