"""Typed errors with messages that say what was wrong and what to do."""

from __future__ import annotations


class SkydistillError(Exception):
    """Base class of every error skydistill raises on purpose."""


class ConfigError(SkydistillError, ValueError):
    """A run-config value is missing, of the wrong type or out of range."""


class DataNotFoundError(SkydistillError, FileNotFoundError):
    """The data folder (or a file in it) does not exist."""


class RasterReadError(SkydistillError):
    """A raster file could not be read (truncated, corrupt, not a raster)."""


class BandMismatchError(SkydistillError):
    """A raster has a different band count or dtype than the dataset declares."""


class CodecError(SkydistillError, ValueError):
    """A soft-label payload has the wrong shape, dtype, range or is not finite."""


class ReplyError(SkydistillError, ValueError):
    """A client reply is malformed; carries a short machine-readable reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class FetchError(SkydistillError):
    """Downloading or verifying a public archive failed."""
