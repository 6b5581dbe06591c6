"""The controller's loop: a queue of inputs, timers, and the turn that handles them.

``emit`` may be called from any thread (a thread-safe priority queue: the fire alarm and
``Stop`` go ahead of everything waiting). Everything else runs on the loop's thread:
``handle(input)`` and ``tick(now)`` are the whole of a turn and are deterministic given the
clock, so a test drives them by hand with a fake clock (``pump`` handles what was queued);
``run`` only takes inputs from the queue and the time from the clock. What a turn does is
the subclass's (kiosk/gate/controller.py).
"""

from __future__ import annotations

import itertools
import logging
import queue
from collections.abc import Callable
from typing import Any

from kiosk.clock import Clock
from kiosk.gate.inputs import CodeRead, Event, FireAlarmInput, Stop
from kiosk.gate.parts import Heartbeat
from kiosk.logs import where
from kiosk.throttle import LogThrottle
from kiosk.timers import Timers

log = logging.getLogger("kiosk.gate.controller")


class GateLoop:
    """The loop's mechanics; the gate's rules are in the subclass's hooks."""

    def __init__(self, *, clock: Clock, heartbeat: Heartbeat | None) -> None:
        self._clock = clock
        self._heartbeat = heartbeat
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._timers = Timers()
        self._throttle = LogThrottle(30.0)

    # -- hooks ------------------------------------------------------------------------

    def start(self) -> None:
        """The loop's first step."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """The loop's last step, whatever happened."""
        raise NotImplementedError

    def _dispatch(self, event: Event) -> None:
        raise NotImplementedError

    def _on_timer(self, name: str, token: Any) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        raise NotImplementedError

    def _stopping(self) -> None:
        """After the queue was drained for a stop."""

    # -- the loop ---------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Hand an input to the controller (any thread)."""
        urgent = isinstance(event, FireAlarmInput | Stop)
        self._queue.put((0 if urgent else 1, next(self._order), event))

    def run(self) -> None:
        """Run until a Stop input; the relay is released on the way out, whatever happens."""
        try:
            self.start()
            while True:
                if self._heartbeat is not None:
                    self._heartbeat.beat()
                timeout = 1.0
                due = self._timers.next_due()
                if due is not None:
                    timeout = min(timeout, max(0.0, due - self._clock.monotonic()))
                try:
                    event = self._queue.get(timeout=timeout)[2]
                except queue.Empty:
                    event = None
                if isinstance(event, Stop):
                    self._guarded(self._drain_for_stop)
                    break
                if event is not None:
                    self.handle(event)
                self.tick(self._clock.monotonic())
        finally:
            self.shutdown()

    def handle(self, event: Event) -> None:
        """Act on one input, then publish what the gate does now. Never raises on input."""
        self._guarded(self._dispatch, event)
        self._publish()

    def tick(self, now: float) -> None:
        """Fire the timers due at monotonic ``now``, then publish."""
        fired = False
        for name, token in self._timers.pop_due(now):
            fired = True
            self._guarded(self._on_timer, name, token)
        if fired:
            self._publish()

    def next_due(self) -> float | None:
        """The monotonic time the next timer falls due, or None."""
        return self._timers.next_due()

    def pump(self) -> int:
        """Handle every input already queued, without waiting (tests driving the loop by
        hand, with an inline lookup executor); returns how many were handled."""
        handled = 0
        while True:
            try:
                event = self._queue.get_nowait()[2]
            except queue.Empty:
                return handled
            if not isinstance(event, Stop):
                self.handle(event)
                handled += 1

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        # Bad input never ends the loop: log where (rate-limited) and go on with the next.
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - any bug in a handler: said where, the gate goes on
            self._log_error(getattr(fn, "__name__", "handler"), exc)

    def _log_error(self, what: str, exc: BaseException) -> None:
        ok, held = self._throttle.allow(f"{what}:{type(exc).__name__}")
        if ok:
            log.error("controller: %s failed: %s (%d like it held back)", what, where(exc), held)

    def _drain_for_stop(self) -> None:
        """Before stopping: what already happened is still handled and recorded (a passage,
        a command, a lookup's answer); codes not yet decided are left (shown again later)."""
        while True:
            try:
                event = self._queue.get_nowait()[2]
            except queue.Empty:
                break
            if not isinstance(event, CodeRead | Stop):
                self.handle(event)
        self._stopping()
