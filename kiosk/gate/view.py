"""The observable gate: one published view of what the gate does (DEVELOPERS.md principle 2).

The controller is the only writer: after each event it has handled it publishes a new
:class:`GateSnapshot` (mode, turnstile, light, sound, occupancy, health, backlog, clock trust,
the last decision) and every record it made. Everything that shows the gate (the retained
MQTT state, the journal lines, the display, the console, the metrics) reads from here and
never reaches into the controller. Besides snapshots and records the controller publishes
notes (kiosk/gate/notes.py: a mode change, a forced passage, a device lost, a command
refused, ...): what the journal puts in words.

Threading contract:

- ``publish``, ``set_health`` and ``recorded`` may be called from any thread; the controller
  calls ``publish`` and ``recorded`` from its loop (mode, turnstile, light, sound, occupancy,
  checking, offline, the last decision; the health of camera, scanner, relay, status and
  disk); the kiosk's housekeeping (kiosk/assembly.py) reports what the controller does not
  know: the clock's trust and health (from the ClockGuard), the broker's health (from the
  link) and the outbox's backlog (``publish(backlog=...)``). Health parts are merged under
  the lock (``health_parts``), so writers of different parts never undo each other's. Each
  call is short (a lock, a copy, a notify).
- ``note`` is called by the controller from its loop only (the journal's rate limits rely on
  one caller at a time); observers that implement ``noted(note)`` hear each note, in order,
  on that thread; observers without a ``noted`` method are skipped (``GateObserver`` needs
  only its two methods).
- ``snapshot()`` and ``recent()`` may be called from any thread; they return immutable values.
- Observers (``subscribe``) are called on the publishing thread, in order, and must return
  at once: an observer that has slow work to do (a network publish, a page push) hands it to
  its own thread. A failing observer is logged and skipped; it never stops the gate.
- ``wait_for_change(after, timeout)`` blocks a reader thread (a web page's server push) until
  a snapshot newer than ``after`` exists; it never blocks the controller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from kiosk.gate.notes import Note
from kiosk.logs import log_bug

log = logging.getLogger(__name__)

#: The parts the gate depends on (mqtt.md, State, ``health``), plus the broker (display.md).
HEALTH_PARTS = ("camera", "scanner", "status", "broker", "clock", "disk", "relay")
OK, DOWN, OFF = "ok", "down", "off"
RECENT_RECORDS = 200


@dataclass(frozen=True)
class LastDecision:
    """The newest decision, as people may see it: no subject, the holder masked at most."""

    decision: str
    reason: str
    st: str | None
    via: str
    source: str
    latency_ms: float
    at: float  # epoch seconds
    holder_masked: str | None = None
    seq: int | None = None


@dataclass(frozen=True)
class GateSnapshot:
    """What the gate is doing now. ``version`` grows by one with every published change."""

    version: int = 0
    mode: str = "normal"
    since: float = 0.0  # epoch seconds the mode began
    turnstile: str = "locked"  # "locked" or "free"
    light: str = "off"  # a kiosk.devices.Light value
    sound: str = "none"  # the last kiosk.devices.Sound played
    occupancy: int | None = None
    capacity: int | None = None
    checking: bool = False  # a status lookup is running for someone at the gate
    # When ``checking`` last turned true (epoch seconds; the view's clock fills it in when a
    # publisher does not): the display shows its spinner only once a lookup has run 150 ms.
    checking_since: float | None = None
    offline: bool = False  # the status service does not answer
    clock_trusted: bool = True
    health: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict.fromkeys(HEALTH_PARTS, OFF))
    )
    backlog: int = 0  # events waiting for the broker
    last_decision: LastDecision | None = None
    kiosk_version: str = ""


class GateObserver(Protocol):
    """Something that shows the gate: told of every change and every record."""

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        """A new snapshot was published (called on the publishing thread; return at once)."""
        ...

    def recorded(self, event: Mapping[str, Any]) -> None:
        """An event was recorded (already committed to the store; return at once)."""
        ...


class NoteObserver(Protocol):
    """An observer that also hears the controller's notes (its optional third method)."""

    def noted(self, note: Note) -> None:
        """Something happened at the gate (the controller's thread; return at once)."""
        ...


class GateView:
    """The one observable view of the gate; see the module's threading contract."""

    def __init__(
        self, initial: GateSnapshot | None = None, *, now: Callable[[], float] = time.time
    ) -> None:
        self._now = now
        self._cond = threading.Condition()
        self._snapshot = initial or GateSnapshot()
        self._observers: list[GateObserver] = []
        self._recent: deque[Mapping[str, Any]] = deque(maxlen=RECENT_RECORDS)

    # -- readers ----------------------------------------------------------------------

    def snapshot(self) -> GateSnapshot:
        """The current snapshot (immutable)."""
        with self._cond:
            return self._snapshot

    def recent(self, limit: int = 50, *, type_: str | None = None) -> list[Mapping[str, Any]]:
        """The newest records, oldest first; ``type_`` keeps one type (e.g. ``decision``)."""
        with self._cond:
            items = [e for e in self._recent if type_ is None or e.get("type") == type_]
        return items[-limit:] if limit > 0 else []

    def wait_for_change(self, after: int, timeout: float) -> GateSnapshot:
        """Block until a snapshot newer than version ``after`` exists, or ``timeout`` passes;
        return the current snapshot either way."""
        with self._cond:
            self._cond.wait_for(lambda: self._snapshot.version > after, timeout)
            return self._snapshot

    def subscribe(self, observer: GateObserver) -> Callable[[], None]:
        """Add an observer; returns the function that removes it again."""
        with self._cond:
            self._observers.append(observer)

        def unsubscribe() -> None:
            with self._cond:
                if observer in self._observers:
                    self._observers.remove(observer)

        return unsubscribe

    # -- writers ----------------------------------------------------------------------

    def publish(
        self, *, health_parts: Mapping[str, str] | None = None, **changes: Any
    ) -> GateSnapshot:
        """Change some fields of the snapshot; observers hear of it only if something changed.
        ``health_parts`` are merged into ``health`` under the lock, so writers of different
        parts (the controller, the kiosk's housekeeping) never undo each other's."""
        with self._cond:
            current = self._snapshot
            if health_parts:
                merged = dict(current.health)
                merged.update(health_parts)
                changes["health"] = MappingProxyType(merged)
            candidate = replace(current, **changes)
            if not candidate.checking:
                candidate = replace(candidate, checking_since=None)
            elif not current.checking and "checking_since" not in changes:
                candidate = replace(candidate, checking_since=self._now())
            if candidate == current:
                return current
            self._snapshot = replace(candidate, version=current.version + 1)
            snap = self._snapshot
            observers = list(self._observers)
            self._cond.notify_all()
        for observer in observers:
            self._tell(observer.gate_changed, snap)
        return snap

    def set_health(self, part: str, state: str) -> GateSnapshot:
        """One part's health (``ok``, ``down`` or ``off``); any thread."""
        if part not in HEALTH_PARTS or state not in (OK, DOWN, OFF):
            raise ValueError(f"health {part}={state}")
        return self.publish(health_parts={part: state})

    def recorded(self, event: Mapping[str, Any]) -> None:
        """An event was committed to the store: keep it among the recent ones, tell observers."""
        frozen = MappingProxyType(dict(event))
        with self._cond:
            self._recent.append(frozen)
            observers = list(self._observers)
        for observer in observers:
            self._tell(observer.recorded, frozen)

    def note(self, note: Note) -> None:
        """Tell observers with a ``noted`` method what just happened (the controller's loop)."""
        with self._cond:
            observers = list(self._observers)
        for observer in observers:
            noted = getattr(observer, "noted", None)
            if noted is not None:
                self._tell(noted, note)

    @staticmethod
    def _tell(fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception as exc:  # noqa: BLE001 - an observer's bug must never stop the gate: say where
            log_bug(log, f"gate observer {getattr(fn, '__qualname__', fn)}", exc)
