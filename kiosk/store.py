"""The kiosk's local event store: every event is committed here before it is acknowledged.

The MQTT outbox publishes from this store and marks events delivered on PUBACK (mqtt.md), so
an event survives a broker outage, a daemon crash and a power cut. SQLite in WAL mode with
``synchronous=FULL``: a commit returns only once the write-ahead log is on disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from kiosk.clock import Clock, rfc3339_ms
from kiosk.errors import StoreError

log = logging.getLogger(__name__)

StorePath = str | os.PathLike[str]


class Closing:
    """``with store:`` closes the store at the end (the stores' shared context manager)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


#: Field names that would carry a raw identity or code. Callers pass keyed pseudonyms only
#: (DEVELOPERS.md, principle 5); refusing these names catches the mistake at the first test run.
FORBIDDEN_FIELDS = frozenset({"iin", "passport", "raw", "text", "code"})

#: mqtt.md: ``subject`` is HMAC-SHA256 hex cut to 20 characters, or null.
_PSEUDONYM = re.compile(r"[0-9a-f]{20}")

#: Fields the store itself fills in; a caller's value would silently falsify the envelope.
ENVELOPE_FIELDS = frozenset({"event_id", "seq", "kiosk_id", "venue_id", "ts", "type"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    ts           TEXT NOT NULL,
    recorded_at  REAL NOT NULL,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    delivered    INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS events_by_delivery ON events (delivered, seq);
"""


def connect_durable(path: StorePath, *, what: str) -> sqlite3.Connection:
    """Open an SQLite database in WAL mode with ``synchronous=FULL``, shared between threads.

    The caller serialises access with its own lock (hence ``check_same_thread=False``) and
    manages transactions itself (``isolation_level=None``). ``what`` names the store in errors.
    """
    try:
        conn = sqlite3.connect(
            os.fspath(path), timeout=10.0, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{what} {os.fspath(path)}: cannot open: {exc}") from exc
    try:
        # The first statement reads the header, so a file that is not a database fails here.
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        # FULL: in WAL mode, NORMAL may lose the last commits on power loss; an acknowledged
        # event must not be lost.
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{what} {os.fspath(path)}: {exc}") from exc
    return conn


class EventStore(Closing):
    """Durable, ordered store of the kiosk's events (mqtt.md), shared by the controller and the
    MQTT outbox.

    ``record()`` builds the full event (``event_id``, ``seq``, ``kiosk_id``, ``venue_id``,
    ``ts``, ``type`` and the caller's fields), commits it and only then returns it: the return
    is the acknowledgement. ``seq`` grows by one per event and is never reused, across
    restarts and after pruning: its high-water mark lives in the ``meta`` table, written in the
    same transaction as the event.

    Size bound: the store holds at most ``max_events`` rows, delivered or not. When a new event
    would exceed it, delivered events are deleted oldest first. If every row is undelivered
    (the broker has been unreachable for a long time), the new event is still recorded, since
    a decision record is never refused, and the OLDEST undelivered event is dropped instead:
    the newest records matter most to the operator, and consumers see the gap in ``seq``. Each
    such loss increments ``dropped_count`` in ``meta`` (exposed as :attr:`dropped_count`) and
    logs a warning.

    Privacy: ``record()`` refuses fields named ``iin``, ``passport``, ``raw``, ``text`` or
    ``code`` (:data:`FORBIDDEN_FIELDS`), and a ``subject`` that is not a 20-hex-character
    pseudonym or None; callers pass keyed pseudonyms only.

    Thread-safe: one connection guarded by a lock. Every sqlite3 error becomes a
    :class:`~kiosk.errors.StoreError` naming the file.
    """

    def __init__(
        self,
        path: StorePath,
        *,
        kiosk_id: str,
        venue_id: str,
        clock: Clock,
        max_events: int = 1_000_000,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events}")
        self.path = os.fspath(path)
        self.kiosk_id = kiosk_id
        self.venue_id = venue_id
        self.max_events = max_events
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = connect_durable(path, what="event store")
        try:
            with self._transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                # The meta row is the authority; max(seq) covers a store whose meta row was lost.
                (max_seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
                self._last_seq = max(self._meta(conn, "last_seq"), max_seq)
                self._count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        except StoreError:
            self._close_quietly()
            raise

    # -- recording --------------------------------------------------------------------------

    def record(self, type: str, **fields: Any) -> dict[str, Any]:
        """Build the event, commit it durably, and return it (the acknowledgement).

        Raises StoreError for a forbidden or envelope field name, a body that is not JSON, or
        a database failure; in every case nothing was recorded.
        """
        if not isinstance(type, str) or not type:
            raise StoreError(f"event store {self.path}: event type must be a non-empty string")
        forbidden = sorted(FORBIDDEN_FIELDS.intersection(fields))
        if forbidden:
            raise StoreError(
                f"event store {self.path}: refusing field(s) {', '.join(forbidden)}: "
                "events carry pseudonyms only, never an IIN, passport number or raw code"
            )
        subject = fields.get("subject")
        if subject is not None and not (isinstance(subject, str) and _PSEUDONYM.fullmatch(subject)):
            raise StoreError(
                f"event store {self.path}: subject must be a 20-hex-character pseudonym or None"
            )
        clash = sorted(ENVELOPE_FIELDS.intersection(fields))
        if clash:
            raise StoreError(
                f"event store {self.path}: field(s) {', '.join(clash)} are set by the store"
            )
        with self._lock:
            now = self._clock.time()
            seq = self._last_seq + 1
            event: dict[str, Any] = {
                "event_id": str(uuid.uuid4()),
                "seq": seq,
                "kiosk_id": self.kiosk_id,
                "venue_id": self.venue_id,
                "ts": rfc3339_ms(now),
                "type": type,
                **fields,
            }
            try:
                # allow_nan=False: NaN is not JSON, and a consumer would reject the event.
                body = json.dumps(event, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise StoreError(
                    f"event store {self.path}: {type} event is not JSON-serialisable: {exc}"
                ) from exc
            with self._transaction() as conn:
                removed = self._make_room(conn)
                conn.execute(
                    "INSERT INTO events (seq, event_id, ts, recorded_at, type, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (seq, event["event_id"], event["ts"], now, type, body),
                )
                self._set_meta(conn, "last_seq", seq)
            # Only after COMMIT: a failed transaction leaves the in-memory view unchanged.
            self._last_seq = seq
            self._count += 1 - removed
            return event

    def _make_room(self, conn: sqlite3.Connection) -> int:
        """Delete rows so that one more fits under ``max_events``; return how many went."""
        removed = 0
        while self._count - removed >= self.max_events:
            cur = conn.execute(
                "DELETE FROM events WHERE seq ="
                " (SELECT seq FROM events WHERE delivered = 1 ORDER BY seq LIMIT 1)"
            )
            if cur.rowcount:
                removed += 1
                continue
            row = conn.execute(
                "SELECT seq, type FROM events WHERE delivered = 0 ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:  # pragma: no cover - count and table disagree; nothing to drop
                break
            conn.execute("DELETE FROM events WHERE seq = ?", (row[0],))
            dropped = self._meta(conn, "dropped_count") + 1
            self._set_meta(conn, "dropped_count", dropped)
            removed += 1
            log.warning(
                "event store %s full (%d events, none delivered): dropped undelivered %s "
                "event seq %d (%d dropped so far)",
                self.path,
                self.max_events,
                row[1],
                row[0],
                dropped,
            )
        return removed

    # -- reading and delivery ---------------------------------------------------------------

    def last_mode(self) -> str | None:
        """The mode of the newest ``mode`` event, so a restart keeps a lockdown or an
        emergency that an operator has not yet ended."""
        with self._reading() as conn:
            row = conn.execute(
                "SELECT body FROM events WHERE type = 'mode' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        mode = json.loads(row[0]).get("mode")
        return mode if isinstance(mode, str) else None

    def get(self, seq: int) -> dict[str, Any] | None:
        """The event with this ``seq``, or None if it was never recorded or has been pruned."""
        with self._reading() as conn:
            row = conn.execute("SELECT seq, body FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else self._decode(row)

    def events(self, after_seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored events with ``seq > after_seq``, in seq order, at most ``limit`` of them."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, -1 if limit is None else limit),
            ).fetchall()
        return [self._decode(row) for row in rows]

    def undelivered(self, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest ``limit`` events not yet acknowledged by the broker, in seq order."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT seq, body FROM events WHERE delivered = 0 ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._decode(row) for row in rows]

    def mark_delivered(self, seqs: Iterable[int]) -> int:
        """Mark these events delivered (broker PUBACK); return how many were newly marked.

        Unknown or already-delivered seqs are ignored: a late PUBACK after a prune is harmless.
        """
        wanted = [int(seq) for seq in seqs]
        if not wanted:
            return 0
        with self._lock:
            now = self._clock.time()
            with self._transaction() as conn:
                before = conn.total_changes
                conn.executemany(
                    "UPDATE events SET delivered = 1, delivered_at = ?"
                    " WHERE seq = ? AND delivered = 0",
                    [(now, seq) for seq in wanted],
                )
                return conn.total_changes - before

    def prune(self, retention_s: float) -> int:
        """Delete delivered events recorded more than ``retention_s`` ago; return how many.

        Undelivered events are never pruned by age: they still wait for the broker.
        """
        with self._lock:
            cutoff = self._clock.time() - retention_s
            with self._transaction() as conn:
                cur = conn.execute(
                    "DELETE FROM events WHERE delivered = 1 AND recorded_at < ?", (cutoff,)
                )
                removed = cur.rowcount
            self._count -= removed
            return removed

    @property
    def last_seq(self) -> int:
        """The highest seq ever recorded (0 for a new store), even if that event was pruned."""
        with self._lock:
            self._require_open()
            return self._last_seq

    @property
    def dropped_count(self) -> int:
        """Undelivered events dropped under the size bound, over the store's whole life."""
        with self._reading() as conn:
            return self._meta(conn, "dropped_count")

    def count(self) -> int:
        """Events stored, delivered or not."""
        with self._lock:
            self._require_open()
            return self._count

    def undelivered_count(self) -> int:
        """Events waiting for the broker."""
        with self._reading() as conn:
            return conn.execute("SELECT count(*) FROM events WHERE delivered = 0").fetchone()[0]

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; further calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                raise StoreError(f"event store {self.path}: closing: {exc}") from exc
            finally:
                self._conn = None

    # -- internals --------------------------------------------------------------------------

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"event store {self.path}: store is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; COMMIT (durable, synchronous=FULL) or ROLLBACK, errors wrapped."""
        with self._lock:
            conn = self._require_open()
            try:
                # IMMEDIATE takes the write lock now, so a second process fails fast and clearly.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"event store {self.path}: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._require_open()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"event store {self.path}: {exc}") from exc

    def _decode(self, row: tuple[int, str]) -> dict[str, Any]:
        seq, body = row
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise StoreError(f"event store {self.path}: event seq {seq} is corrupt: {exc}") from exc
        if not isinstance(event, dict):
            raise StoreError(f"event store {self.path}: event seq {seq} is not a JSON object")
        return event

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: int) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def read_recent(path: StorePath, *, types: tuple[str, ...], since: float) -> list[dict[str, Any]]:
    """Events of ``types`` recorded at or after wall time ``since``, oldest first.

    Opens the file read-only (`kiosk check` records nothing); a missing store has no events.
    The gate's short memories (used passes, recent passages) are rebuilt from these at start,
    so they cost the SD card no writes of their own.
    """
    if not os.path.exists(path):
        return []
    marks = ",".join("?" * len(types))
    try:
        conn = sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True, timeout=10.0)
        try:
            rows = conn.execute(
                f"SELECT body FROM events WHERE type IN ({marks}) AND recorded_at >= ? "
                "ORDER BY seq",
                (*types, since),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"event store {os.fspath(path)}: cannot read: {exc}") from exc
    return [json.loads(body) for (body,) in rows]
