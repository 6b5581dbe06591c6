"""The fleet simulation's one error."""

from __future__ import annotations

from kiosk.errors import KioskError


class FleetError(KioskError):
    """The fleet cannot run: a bad argument, or the broker or responder is unreachable."""
