"""Notes: what just happened at the gate, as the controller tells it to the view.

A snapshot says what the gate is; a record is what the event store keeps; a note says what
changed, for those who put it in words (the journal, kiosk/journal.py) without reaching into
the controller. The controller publishes them through ``GateView.note`` on its loop; each
carries what its words need and no subject, code or pass (DEVELOPERS.md principle 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.reasons import Mode


@dataclass(frozen=True)
class ModeNote:
    """The gate went to ``mode`` from ``previous`` because of ``cause`` (``start``, ``resume``,
    ``lockdown``, ``fire_alarm``, ``schedule``); ``occupancy_reset``: opening time set the
    count to 0 from something else."""

    mode: Mode
    previous: Mode
    cause: str
    occupancy_reset: bool = False


@dataclass(frozen=True)
class FireNote:
    """The fire-alarm input changed without a change of mode (``mode``: the mode it left)."""

    open: bool
    mode: Mode


@dataclass(frozen=True)
class ForcedNote:
    """Someone passed the turnstile with no admission."""


@dataclass(frozen=True)
class TimeoutNote:
    """An unlock window of ``unlock_s`` ended without a passage; ``cause``: ``decision``,
    ``open_once``, the mode the gate went to, or ``stop``."""

    cause: str
    unlock_s: float


@dataclass(frozen=True)
class DeviceNote:
    """A device (camera, scanner, relay) was lost (``ok`` false) or is back."""

    device: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class CommandNote:
    """An operator command ran (``ok``) or was refused (``error`` names why); ``said`` is what
    one that changes no mode did, in words; ``account`` the console account that sent it."""

    cmd: str
    origin: str
    ok: bool
    error: str | None = None
    said: str = ""
    account: str | None = None


Note = ModeNote | FireNote | ForcedNote | TimeoutNote | DeviceNote | CommandNote
