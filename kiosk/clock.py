"""Clocks passed into the core, so tests and `kiosk check --at` can fix the time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time for validity rules, monotonic time for timers and deadlines."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...


class SystemClock:
    """The machine's clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FixedWallClock:
    """The machine's monotonic clock, with the wall clock starting at a given instant.

    Used by `kiosk check --at`: the code is judged as if presented at that instant.
    """

    def __init__(self, at: float) -> None:
        self._at = at
        self._start = time.monotonic()

    def time(self) -> float:
        return self._at + (time.monotonic() - self._start)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = float(start)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def set_wall(self, when: float) -> None:
        """Move the wall clock alone (it may jump, even backwards, as real ones do)."""
        with self._lock:
            self._wall = float(when)


def rfc3339_ms(epoch_s: float) -> str:
    """RFC 3339 UTC with milliseconds, as events carry it."""
    dt = datetime.fromtimestamp(epoch_s, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """Parse RFC 3339 or epoch seconds into epoch seconds; raise ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset (write Z or +05:00)")
    return dt.timestamp()
