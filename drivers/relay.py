"""The turnstile's release relay, with a limit of its own on every admission's unlock.

The controller's unlock timer ends an admission's window; behind it stand this driver's own
limit, then the systemd watchdog and ``kiosk release`` (gate.md, Safety). The driver owns
the pin, so the limit lives here, in the driver's terms of the turnstile: "locked" is the
de-energised relay on a fail-secure site and the energised one on a fail-safe site, on
either polarity of the relay board. Like Klipper's ``max_duration`` on its outputs.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Protocol

from gpiozero import OutputDevice
from gpiozero.pins import Factory

from drivers.pins import _device_errors
from kiosk.config.schema import SECTIONS
from kiosk.errors import DeviceError

log = logging.getLogger(__name__)

_UNLOCK = SECTIONS["gate"]["unlock_s"]
assert _UNLOCK.min is not None and _UNLOCK.max is not None  # every number has a range
HOLD_MIN_S: float = _UNLOCK.min
"""Shortest hold ``free`` accepts: the configuration's least ``[gate] unlock_s``."""
HOLD_MAX_S: float = _UNLOCK.max
"""Longest hold ``free`` accepts: the configuration's greatest ``[gate] unlock_s``."""
DEFAULT_HOLD_S: float = _UNLOCK.default
"""The hold of a ``free()`` that names none, and of one that is not a finite number."""
LIMIT_MARGIN_S = 0.5
"""How long past the hold the driver waits for the controller's own relock.

A fixed time, not a share of the window: what it covers is the controller loop's lateness
(one event being handled, a record being written), which does not grow with the window.
10 % would be 10 ms on a 0.1 s window, racing a healthy controller, and 6 s on a 60 s one.
"""
RETRY_S = 0.5
"""How soon the limit tries again when the pin refused to lock."""

LIMIT_FIRED = "relay: unlock held past its window; released by the driver's own limit"
"""The journal line (WARNING) when the limit ends an unlock."""


class Limit(Protocol):
    """A started one-shot timer that can be called off (``threading.Timer`` is one)."""

    def cancel(self) -> None:
        """Do not call the function (harmless once it has run)."""
        ...


TimerFactory = Callable[[float, Callable[[], None]], Limit]
"""Starts a timer that calls the function after so many seconds, in some other thread."""


def start_timer(delay_s: float, fn: Callable[[], None]) -> Limit:
    """The real timer: a daemon ``threading.Timer``, started."""
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True  # never keeps a stopping kiosk alive; close() cancels it anyway
    timer.name = "relay-limit"
    timer.start()
    return timer


def bounded_hold(hold_s: float) -> float:
    """``hold_s`` clamped to the configuration's range; not a finite number: the default."""
    if not isinstance(hold_s, int | float) or not math.isfinite(hold_s):
        return DEFAULT_HOLD_S
    return min(max(float(hold_s), HOLD_MIN_S), HOLD_MAX_S)


class RelayTurnstile:
    """The turnstile's release relay on one output pin (``kiosk.devices.Turnstile``).

    The relay is de-energised the instant this object exists (gpiozero configures the pin
    as an output already at the inactive level), so building it is the first thing the
    kiosk does. ``active_high`` is the relay board's input polarity; ``fail_safe`` says
    what a de-energised relay means: on a fail-secure site (default) released = locked, on
    a fail-safe site (the turnstile is free when power is lost) released = free.

    ``free(hold_s)`` (one admission) arms the driver's own limit: unless ``lock``,
    ``release``, another ``free`` or ``hold_free`` comes first, the turnstile is locked
    ``hold_s + LIMIT_MARGIN_S`` later and one WARNING line says so. ``hold_free``
    (emergency) has no limit. ``timer_factory`` is for tests (a timer they fire by hand).
    """

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        fail_safe: bool = False,
        pin_factory: Factory | None = None,
        timer_factory: TimerFactory = start_timer,
    ) -> None:
        self._fail_safe = fail_safe
        self._timer_factory = timer_factory
        self._lock = threading.Lock()
        self._closed = False
        # Every command bumps the generation: a limit armed for an earlier admission finds a
        # newer one and does nothing, even if cancel() came too late to stop its thread.
        self._generation = 0
        self._limit: Limit | None = None
        self._what = f"turnstile relay on GPIO{pin}"
        with _device_errors(self._what):
            self._relay = OutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            )

    @property
    def fail_safe(self) -> bool:
        """Whether a released relay means a free turnstile on this site."""
        return self._fail_safe

    @property
    def energised(self) -> bool:
        """Whether the relay is energised now."""
        with self._lock:
            return not self._closed and bool(self._relay.is_active)

    @property
    def is_free(self) -> bool:
        """Whether the turnstile is free now."""
        return self.energised != self._fail_safe

    @property
    def limit_armed(self) -> bool:
        """Whether the driver's own limit is waiting to end an unlock."""
        with self._lock:
            return self._limit is not None

    def release(self) -> None:
        """De-energise the relay (the state of start, stop and crash)."""
        self._command(energised=False)

    def free(self, hold_s: float = DEFAULT_HOLD_S) -> None:
        """Let one person through, for at most ``hold_s`` plus the margin.

        ``hold_s`` is the unlock window; outside 0.1-60 s it is clamped, and a value that is
        not a finite number counts as the default 5 s (both with a WARNING line).
        """
        hold = bounded_hold(hold_s)
        if hold != hold_s:
            log.warning(
                "relay: asked to free for %r s, outside %g-%g s; held for %g s at most",
                hold_s,
                HOLD_MIN_S,
                HOLD_MAX_S,
                hold,
            )
        self._command(energised=not self._fail_safe, limit_s=hold + LIMIT_MARGIN_S)

    def hold_free(self) -> None:
        """Keep the turnstile free until told otherwise: emergency mode only."""
        self._command(energised=not self._fail_safe)

    def lock(self) -> None:
        """Keep people out."""
        self._command(energised=self._fail_safe)

    def close(self) -> None:
        """Release the relay, then give the pin back. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._disarm()
            try:
                with _device_errors(self._what):
                    self._relay.off()
            finally:
                self._relay.close()

    def _command(self, *, energised: bool, limit_s: float | None = None) -> None:
        with self._lock:
            if self._closed:
                # A closed relay is released; asking for anything else must not pass silently.
                if energised:
                    raise DeviceError(f"{self._what} is closed")
                return
            self._disarm()
            if limit_s is not None:
                # Armed before the pin moves: if anything fails after, the unlock still ends.
                self._arm(limit_s)
            self._set(energised)

    def _disarm(self) -> None:
        # Caller holds self._lock.
        self._generation += 1
        limit, self._limit = self._limit, None
        if limit is not None:
            limit.cancel()

    def _arm(self, delay_s: float) -> None:
        # Caller holds self._lock.
        generation = self._generation
        try:
            self._limit = self._timer_factory(delay_s, lambda: self._limit_reached(generation))
        except RuntimeError as exc:
            # "can't start new thread": then the turnstile is not freed at all.
            raise DeviceError(f"{self._what}: cannot arm its limit: {exc}") from exc

    def _set(self, energised: bool) -> None:
        # Caller holds self._lock.
        with _device_errors(self._what):
            if energised:
                self._relay.on()
            else:
                self._relay.off()

    def _limit_reached(self, generation: int) -> None:
        """Runs in the timer's thread: lock, unless a newer command came meanwhile."""
        with self._lock:
            if self._closed or generation != self._generation:
                return
            self._limit = None
            try:
                self._set(self._fail_safe)
            except DeviceError as exc:
                # Keep trying: a turnstile left free is the one thing that must not last.
                log.error("relay: the driver's own limit could not lock: %s", exc)
                try:
                    self._arm(RETRY_S)
                except DeviceError as again:
                    log.error("relay: %s", again)  # nothing left here; the watchdog is next
                return
        log.warning(LIMIT_FIRED)
