"""What device threads, network callbacks and timers tell the gate controller.

Producers only build these and hand them to ``emit``; the controller alone acts on them
(DEVELOPERS.md principle 2). Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.reasons import Source


@dataclass(frozen=True, slots=True)
class CodeRead:
    """A reader saw a code. ``data`` are the raw bytes as read (never logged)."""

    data: bytes
    source: Source
    t_read: float


@dataclass(frozen=True, slots=True)
class PassageSensed:
    """The passage (entry) sensor saw someone go through."""

    t: float


@dataclass(frozen=True, slots=True)
class ExitSensed:
    """The optional exit sensor saw someone leave."""

    t: float


@dataclass(frozen=True, slots=True)
class FireAlarmInput:
    """The fire-alarm contact's level: ``open`` means alarm or a cut wire."""

    open: bool
    t: float


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device came or went (a camera unplugged at a gym, a scanner replugged)."""

    device: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    """An operator command already verified by whoever received it (`open_once`, `lockdown`,
    `resume`, `reload_config`, `reset_occupancy`); ``done`` is called with (ok, error) once
    executed. ``origin`` says where it came from (``mqtt``, ``console``); ``account`` is the
    console user who gave it."""

    cmd: str
    jti: str | None = None
    origin: str = "local"
    account: str | None = None
    done: Callable[[bool, str | None], None] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LookupDone:
    """A status lookup started by the controller has ended (in a worker thread)."""

    ticket: int
    result: Any


@dataclass(frozen=True, slots=True)
class Stop:
    """End the controller loop (SIGTERM, tests)."""


Event = (
    CodeRead
    | PassageSensed
    | ExitSensed
    | FireAlarmInput
    | DeviceStatus
    | Command
    | LookupDone
    | Stop
)
Emit = Callable[[Event], None]
