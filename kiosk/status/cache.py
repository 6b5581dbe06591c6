"""Answers kept for their ``max_age`` (status-api.md), keyed by pseudonym, never by subject."""

from __future__ import annotations

import threading
from collections import OrderedDict

from kiosk.clock import Clock


class AnswerCache:
    """A bounded map from pseudonym to (status, expiry on the monotonic clock).

    Bounded so that a rush of distinct people cannot grow the daemon's memory without end;
    the least recently stored answers go first.
    """

    def __init__(self, *, clock: Clock, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pseudonym: str) -> str | None:
        """The cached status while still fresh, else None."""
        with self._lock:
            item = self._items.get(pseudonym)
            if item is None:
                return None
            st, expires = item
            if self._clock.monotonic() >= expires:
                del self._items[pseudonym]
                return None
            return st

    def put(self, pseudonym: str, st: str, max_age_s: float) -> None:
        """Keep an answer; ``max_age`` 0 means do not reuse."""
        with self._lock:
            self._items.pop(pseudonym, None)
            if max_age_s <= 0:
                return
            self._items[pseudonym] = (st, self._clock.monotonic() + max_age_s)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
