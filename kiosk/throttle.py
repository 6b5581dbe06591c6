"""Rate limits for log lines, so a flood of bad codes or a dead server cannot fill an SD card."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LogThrottle:
    """Allows one line per key per interval and counts what it held back."""

    def __init__(self, interval_s: float = 60.0, *, now: Callable[[], float] = time.monotonic):
        self._interval = interval_s
        self._now = now
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, int]:
        """(whether to log now, how many lines of this key were held back since the last one)."""
        with self._lock:
            now = self._now()
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False, 0
            self._last[key] = now
            return True, self._held.pop(key, 0)
