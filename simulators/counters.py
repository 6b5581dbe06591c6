"""Thread-safe counters for the simulated services' request statistics."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable
from typing import Any


class Counters:
    """Named totals and one tally by key (an HTTP status, an answer kind), thread-safe.

    One ``add`` updates several counters under one lock, so a snapshot never shows a request
    counted as read but not yet as answered or dropped.
    """

    def __init__(self, *totals: str, tally: str) -> None:
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(totals, 0)
        self._tally_name = tally
        self._tally: Counter[Any] = Counter()

    def total(self, name: str) -> int:
        """The current value of total ``name``."""
        with self._lock:
            return self._totals[name]

    def tally(self) -> dict[Any, int]:
        """A copy of the tally by key."""
        with self._lock:
            return dict(self._tally)

    def add(self, key: Hashable | None = None, **totals: int) -> None:
        """Add to some totals and, if ``key`` is given, count one under it in the tally."""
        with self._lock:
            for name, n in totals.items():
                self._totals[name] += n
            if key is not None:
                self._tally[key] += 1

    def snapshot(self) -> dict[str, Any]:
        """All counters as a JSON-ready dict: the totals, then the tally by sorted key."""
        with self._lock:
            tally = {str(key): n for key, n in sorted(self._tally.items())}
            return {**self._totals, self._tally_name: tally}

    def reset(self) -> None:
        """All counters back to zero."""
        with self._lock:
            self._totals = dict.fromkeys(self._totals, 0)
            self._tally.clear()
