"""Delayed calls for the simulators: one thread running them in due order.

The MQTT status responder injects latency with it. A ``threading.Timer`` per delayed answer
would mean a thread per request in flight, thousands of them under load with latency
injected; a heap needs one.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class DelayedCalls:
    """One thread running delayed calls in due order; ``close`` discards those not yet due."""

    def __init__(self, name: str = "sim-delayed-calls") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # ties keep arrival order; callables never compare
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn()`` in ``delay_s`` seconds (never, once closed)."""
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._order), fn))
            self._cond.notify()

    def close(self) -> int:
        """Stop, discarding calls not yet due; returns how many were discarded."""
        with self._cond:
            self._closed = True
            discarded = len(self._heap)
            self._heap.clear()
            self._cond.notify()
        self._thread.join()
        return discarded

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # one failed call must not stop the others
                log.exception("delayed call failed")
