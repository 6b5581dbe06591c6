"""The one exception family of the kiosk.

Drivers and clients turn library errors into these at their boundary, so the core and the
CLI only ever catch ``KioskError``.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base class of every error the kiosk raises on purpose."""


class ConfigError(KioskError):
    """A configuration file is wrong; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DeviceError(KioskError):
    """A piece of hardware (camera, scanner, GPIO) failed or vanished."""


class StoreError(KioskError):
    """The local event or state store cannot be used."""
