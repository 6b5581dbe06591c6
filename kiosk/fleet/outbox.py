"""Delivers the event store's events to the broker, at least once and in ``seq`` order.

mqtt.md: every event is committed to the local store first and is marked delivered only when
the broker acknowledged it (PUBACK). The outbox thread publishes what is undelivered, at most
``inflight`` unacknowledged at a time; acknowledgements are collected from paho's thread and
written to the store in one transaction per turn, by the outbox thread (so paho's thread,
which also carries status responses, never waits for the store's lock or an fsync).

After a reconnect every event that was in flight is sent again: duplicates are allowed
(consumers drop them by ``event_id``), loss is not.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.errors import KioskError
from kiosk.fleet.link import MqttLink
from kiosk.store import EventStore
from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

#: After each full turn of a backlog drain the outbox sleeps this long, so the controller's
#: ``record()`` (same store lock, same GIL) gets in promptly (benchmarks/bench_mqtt.py).
_YIELD_S = 0.002
#: Acknowledgements are written to the store when this many have gathered, when the oldest is
#: this old, or when nothing is left to send.
_MARK_BATCH = 256
_MARK_DELAY_S = 0.05


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters since start; ``backlog`` is the store's undelivered count when asked."""

    sent: int
    acked: int
    resent: int
    inflight: int
    backlog: int


class Outbox:
    """Publishes the store's undelivered events to ``{prefix}/kiosk/{kiosk_id}/events``.

    Runs in its own thread, woken by :meth:`wake` (after each recorded event), by acks and by
    reconnects; it also looks every ``poll_s`` so that nothing waits on a lost wake-up. Each
    turn publishes at most ``batch`` events, then yields. Delivered events older than
    ``retention_s`` (by the store's clock) are pruned every ``prune_every_s``.
    """

    def __init__(
        self,
        store: EventStore,
        link: MqttLink,
        *,
        batch: int = 50,
        inflight: int = 16,
        retention_s: float = 7 * 86_400.0,
        prune_every_s: float = 600.0,
        poll_s: float = 1.0,
    ) -> None:
        if batch < 1 or inflight < 1:
            raise ValueError("batch and inflight must be at least 1")
        self._store = store
        self._link = link
        self._topic = link.topic("events")
        self._batch = batch
        self._window = inflight
        self._retention_s = retention_s
        self._prune_every_s = prune_every_s
        self._poll_s = poll_s
        self._cond = threading.Condition()
        self._woken = False
        self._reconnected = False
        self._stopping = False
        self._acked_seqs: list[int] = []  # acked by the broker, not yet marked in the store
        self._inflight: set[int] = set()  # sent on this connection, not yet acknowledged
        # The delivery thread's own: acknowledged, not yet marked in the store; and the seq
        # of the last event sent on this connection (None: start from the oldest undelivered).
        self._unmarked: set[int] = set()
        self._unmarked_since = 0.0
        self._cursor: int | None = None
        self._sent = 0
        self._acked = 0
        self._resent = 0
        self._thread: threading.Thread | None = None
        self._throttle = LogThrottle(60.0)
        link.add_connect_listener(self._on_connect)

    # -- the daemon's side --------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread."""
        if self._thread is not None:
            raise KioskError("outbox already started")
        self._thread = threading.Thread(target=self._run, name="mqtt-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """There is something new in the store (any thread; cheap)."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread; events not yet acknowledged stay in the store for the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until the store has nothing undelivered and nothing is in flight (or timeout)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self._store.undelivered_count() == 0:
                    return True
            except KioskError:
                return False
            self.wake()
            time.sleep(0.02)
        return False

    def stats(self) -> OutboxStats:
        """The counters: sent, acked, resent (after reconnects), in flight, and the backlog."""
        try:
            backlog = self._store.undelivered_count()
        except KioskError:
            backlog = -1
        with self._cond:
            return OutboxStats(self._sent, self._acked, self._resent, len(self._inflight), backlog)

    # -- callbacks from paho's thread ---------------------------------------------------

    def _on_connect(self) -> None:
        with self._cond:
            self._reconnected = True
            self._cond.notify()

    def _ack(self, seq: int) -> None:
        with self._cond:
            self._acked_seqs.append(seq)
            self._acked += 1
            self._cond.notify()

    # -- the delivery thread ------------------------------------------------------------

    def _run(self) -> None:
        next_prune = 0.0
        while True:
            with self._cond:
                idle = not (self._woken or self._reconnected or self._acked_seqs)
                if idle and not self._stopping:
                    self._cond.wait(self._poll_s)
                stopping = self._stopping
                self._woken = False
                reconnected, self._reconnected = self._reconnected, False
                acked, self._acked_seqs = self._acked_seqs, []
            try:
                if stopping:
                    # What the broker acknowledged need not go out again after a restart.
                    self._unmarked.update(acked)
                    self._mark()
                    return
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self._prune_every_s
                    self._prune()
                more = self._turn(acked, reconnected)
            except Exception as exc:  # noqa: BLE001 - a failing store (disk full) must not end delivery for good
                if stopping:
                    return
                # A failing store (disk full) must not end delivery for good. Unwritten acks
                # are forgotten and those events simply go out again, from the oldest.
                self._warn("turn", "outbox: %s: %s", type(exc).__name__, exc)
                more = False
                with self._cond:
                    self._inflight.clear()
                    self._unmarked.clear()
                    self._cursor = None
                    self._cond.wait(self._poll_s)
            if more:
                self.wake()

    def _turn(self, acked: list[int], reconnected: bool) -> bool:
        """One bounded turn; True when more is waiting and the window has room for it."""
        now = time.monotonic()
        if acked:
            if not self._unmarked:
                self._unmarked_since = now
            self._unmarked.update(acked)
            with self._cond:
                self._inflight.difference_update(acked)
        if reconnected:
            self._mark()
            with self._cond:
                # Their acks died with the old connection: send them again, from the oldest.
                self._resent += len(self._inflight)
                self._inflight.clear()
            self._cursor = None
        more, exhausted = self._send()
        # Acks are written in batches: one durable commit per batch, not per event, so the
        # controller's record() rarely waits for the outbox's commit (bench_mqtt.py).
        if self._unmarked and (
            exhausted
            or not self._link.connected
            or len(self._unmarked) >= _MARK_BATCH
            or now - self._unmarked_since >= _MARK_DELAY_S
        ):
            self._mark()
        return more

    def _send(self) -> tuple[bool, bool]:
        """Publish up to a batch: (more may be sent at once, nothing is left to send)."""
        room = self._window - len(self._inflight)
        if room <= 0 or not self._link.connected:
            return False, False
        want = min(room, self._batch)
        if self._cursor is None:
            # After a (re)connect: from the oldest undelivered event, none of them in flight.
            events = self._store.undelivered(limit=want)
        else:
            # Then onwards in seq order; one delivered out of order is merely sent again.
            events = self._store.events(after_seq=self._cursor, limit=want)
        for event in events:
            if not self._publish(event):
                return False, False  # not connected: the next connect wakes us
            self._cursor = event["seq"]
        exhausted = len(events) < want
        if events and not exhausted:
            time.sleep(_YIELD_S)  # a backlog drain: let the controller's record() in
        return not exhausted and len(self._inflight) < self._window, exhausted

    def _publish(self, event: dict[str, Any]) -> bool:
        seq = event["seq"]
        payload = json.dumps(event, separators=(",", ":")).encode()
        with self._cond:
            self._inflight.add(seq)
        ok = self._link.publish(self._topic, payload, qos=1, on_ack=_bind(self._ack, seq))
        with self._cond:
            if ok:
                self._sent += 1
            else:
                self._inflight.discard(seq)
        return ok

    def _mark(self) -> None:
        if self._unmarked:
            self._store.mark_delivered(sorted(self._unmarked))
            self._unmarked.clear()

    def _prune(self) -> None:
        removed = self._store.prune(self._retention_s)
        if removed:
            log.info("pruned %d delivered events older than %.0f s", removed, self._retention_s)

    def _warn(self, key: str, msg: str, *args: object) -> None:
        ok, held = self._throttle.allow(key)
        if ok:
            log.warning(msg + (f" ({held} more like it)" if held else ""), *args)


def _bind(fn: Callable[[int], None], seq: int) -> Callable[[], None]:
    return lambda: fn(seq)
