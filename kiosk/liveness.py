"""Progress clocks of the daemon's loops, so the systemd watchdog notices a hung one.

Each loop says how soon it will show progress again (``beat(name, within_s)``); the watchdog
is pinged only while no promise has expired. A camera read that never returns, a decoder
stuck in a bad frame, or a scanner thread in a dead lock thus stops the pings, and systemd
restarts the daemon (whose start-up releases the relay first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Liveness:
    """Named promises of progress, on the monotonic clock."""

    def __init__(self, *, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def beat(self, name: str, within_s: float = 5.0) -> None:
        """``name`` made progress and will again within ``within_s`` seconds."""
        with self._lock:
            self._due[name] = self._now() + within_s

    def forget(self, name: str) -> None:
        """``name`` has stopped on purpose (a device closed at shutdown)."""
        with self._lock:
            self._due.pop(name, None)

    def promised(self, name: str) -> bool:
        """Whether ``name`` has made a promise (and not been forgotten since)."""
        with self._lock:
            return name in self._due

    def stale(self) -> list[str]:
        """The loops that broke their promise."""
        now = self._now()
        with self._lock:
            return sorted(name for name, due in self._due.items() if now > due)

    def alive(self) -> bool:
        """True while every loop keeps its promise."""
        return not self.stale()
