"""What the technician console shows (display.md, The console), built from the observable
gate (kiosk/gate/view.py): the gate now, its health, the last decisions in the venue's local
time with the reason in plain words, and today's charts.

Only whitelisted fields of a record reach the page: a decision's subject only when it has the
pseudonym's form (20 hex digits), never the holder, never a code. A record that carried
anything else would lose it here.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from kiosk.clock import Clock
from kiosk.gate.view import GateSnapshot, GateView
from kiosk.report.glossary import glossary

DECISIONS_SHOWN = 50
COMMANDS_SHOWN = 10
#: Upper edges of the latency histogram's bars, in milliseconds (the last bar is the rest).
LATENCY_EDGES_MS = (50, 100, 200, 300, 500, 1000, 2000)
log = logging.getLogger(__name__)
_PSEUDONYM = re.compile(r"[0-9a-f]{20}")
_WORDS = re.compile(r"[a-z_]{1,40}")


def _word(value: object) -> str | None:
    """A short lower-case identifier (a reason, a source, a mode), or None."""
    return value if isinstance(value, str) and _WORDS.fullmatch(value) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """The record's ``ts`` (RFC 3339 UTC) as an aware datetime, or None."""
    ts = event.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


class ConsoleStats:
    """Today's entries per hour and decision latencies (venue time), kept from the records
    the gate makes; also the console's change counter that its server push waits on.

    A :class:`~kiosk.gate.view.GateObserver`: called on the controller's thread, it only
    counts and notifies."""

    def __init__(self, *, zone: tzinfo, clock: Clock) -> None:
        self.zone = zone
        self._clock = clock
        self._cond = threading.Condition()
        self._changes = 0
        self._day = ""
        self._entries = [0] * 24
        self._latencies = [0] * (len(LATENCY_EDGES_MS) + 1)
        self._last_seq = -1
        self._seen: deque[int] = deque(maxlen=512)

    # -- a GateObserver ---------------------------------------------------------------

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        """The gate changed: wake the pages' streams."""
        self._bump()

    def recorded(self, event: Mapping[str, Any]) -> None:
        """Count an entry or a decision of today."""
        self.count(event)
        self._bump()

    # -- counting ---------------------------------------------------------------------

    def seed(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Count records made before the console started (each at most once, by ``seq``)."""
        for event in events:
            self.count(event)

    def count(self, event: Mapping[str, Any]) -> None:
        """Add one record to today's charts (records of other days are ignored)."""
        seq = event.get("seq")
        when = event_time(event)
        if when is None:
            return
        local = when.astimezone(self.zone)
        with self._cond:
            if isinstance(seq, int):
                if seq in self._seen:
                    return
                self._seen.append(seq)
            self._roll()
            if local.date().isoformat() != self._day:
                return
            if event.get("type") == "passage" and event.get("direction") == "entry":
                self._entries[local.hour] += 1
            elif event.get("type") == "decision":
                latency = _number(event.get("latency_ms"))
                if latency is not None:
                    self._latencies[bisect.bisect_left(LATENCY_EDGES_MS, latency)] += 1

    def charts(self) -> dict[str, Any]:
        """Today's two charts' numbers."""
        with self._cond:
            self._roll()
            return {
                "day": self._day,
                "entries_per_hour": list(self._entries),
                "latency_edges_ms": list(LATENCY_EDGES_MS),
                "latency_counts": list(self._latencies),
            }

    def _roll(self) -> None:
        today = datetime.fromtimestamp(self._clock.time(), self.zone).date().isoformat()
        if today != self._day:
            self._day = today
            self._entries = [0] * 24
            self._latencies = [0] * (len(LATENCY_EDGES_MS) + 1)

    # -- waiting ----------------------------------------------------------------------

    def _bump(self) -> None:
        with self._cond:
            self._changes += 1
            self._cond.notify_all()

    @property
    def changes(self) -> int:
        """How many changes and records there were so far."""
        with self._cond:
            return self._changes

    def wait(self, after: int, timeout: float) -> int:
        """Block until there were more than ``after`` changes, or ``timeout``; the count."""
        with self._cond:
            self._cond.wait_for(lambda: self._changes > after, timeout)
            return self._changes


def today_from_store(
    path: str | os.PathLike[str], *, clock: Clock, zone: tzinfo
) -> list[Mapping[str, Any]]:
    """Today's records (venue time) from the event store, read-only, for the charts of a
    console that starts in the middle of the day; none (and one journal line) when the store
    cannot be read: the charts then count from now."""
    from kiosk.errors import StoreError
    from kiosk.report.query import read_period

    now = datetime.fromtimestamp(clock.time(), zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        extract = read_period(path, midnight.timestamp(), clock.time() + 1)
    except (StoreError, OSError) as exc:
        log.warning("console: today's charts start empty: %s", exc)
        return []
    return [event for _, event in extract.events]


def local_time(epoch_or_event: float | Mapping[str, Any], zone: tzinfo) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in the venue's time."""
    if isinstance(epoch_or_event, Mapping):
        when = event_time(epoch_or_event)
    else:
        when = datetime.fromtimestamp(epoch_or_event, zone) if epoch_or_event else None
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if when else None


def decision_row(event: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """One line of the decisions table: whitelisted fields only."""
    reason = _word(event.get("reason")) or "unknown"
    subject = event.get("subject")
    latency = _number(event.get("latency_ms"))
    return {
        "seq": event.get("seq") if isinstance(event.get("seq"), int) else None,
        "at": local_time(event, zone),
        "decision": _word(event.get("decision")),
        "reason": reason,
        "reason_text": glossary().line(reason, "en"),
        "st": _word(event.get("st")),
        "via": _word(event.get("via")),
        "source": _word(event.get("source")),
        "subject": subject if isinstance(subject, str) and _PSEUDONYM.fullmatch(subject) else None,
        "latency_ms": None if latency is None else round(latency, 1),
    }


def command_row(event: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """One line of the recent commands: what, from where, by whom, and how it ended."""
    account = event.get("account")
    return {
        "seq": event.get("seq") if isinstance(event.get("seq"), int) else None,
        "at": local_time(event, zone),
        "cmd": _word(event.get("cmd")),
        "via": _word(event.get("via")) or _word(event.get("origin")),
        "account": account if isinstance(account, str) and len(account) <= 32 else None,
        "ok": event.get("ok") is True,
        "error": _word(event.get("error")),
    }


def gate_state(snap: GateSnapshot, zone: tzinfo) -> dict[str, Any]:
    """The gate now, as the console shows it."""
    return {
        "mode": snap.mode,
        "since": local_time(snap.since, zone),
        "turnstile": snap.turnstile,
        "light": snap.light,
        "sound": snap.sound,
        "occupancy": snap.occupancy,
        "capacity": snap.capacity,
        "checking": snap.checking,
        "offline": snap.offline,
        "clock_trusted": snap.clock_trusted,
        "health": dict(snap.health),
        "backlog": snap.backlog,
        "kiosk_version": snap.kiosk_version,
        "version": snap.version,
    }


def console_state(
    view: GateView, stats: ConsoleStats, *, simulation: bool, zone_name: str
) -> dict[str, Any]:
    """Everything the console page shows (the stream's ``state`` event)."""
    zone = stats.zone
    return {
        "gate": gate_state(view.snapshot(), zone),
        "decisions": [
            decision_row(e, zone) for e in reversed(view.recent(DECISIONS_SHOWN, type_="decision"))
        ],
        "commands": [
            command_row(e, zone) for e in reversed(view.recent(COMMANDS_SHOWN, type_="command"))
        ],
        "charts": stats.charts(),
        "timezone": zone_name,
        "simulation": simulation,
    }
