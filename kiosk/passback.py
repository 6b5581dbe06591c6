"""When each subject last passed, for the venue's anti-passback rule (gate.md).

Keyed by the subject's pseudonym (20 hex characters, mqtt.md), never a raw IIN or passport
number. Persisted so a daemon restart does not let someone pass back, and mirrored in a dict
so the check on the decision path costs microseconds.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading

from kiosk.clock import Clock
from kiosk.errors import StoreError
from kiosk.store import Closing, StorePath, connect_durable

_PSEUDONYM = re.compile(r"[0-9a-f]{20}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS passages (
    pseudonym TEXT PRIMARY KEY,
    at        REAL NOT NULL
) WITHOUT ROWID
"""


class PassbackMemory(Closing):
    """Last passage time (wall epoch) per subject pseudonym.

    With a ``path``, every ``record_passage()`` is written through to SQLite (WAL,
    ``synchronous=FULL``) before it returns, and the whole table is loaded into memory at
    start; with ``path=None`` it lives in memory only. Lookups never touch the disk.
    A pseudonym must be 20 lowercase hex characters: anything else (a 12-digit IIN, a
    passport number) is refused with StoreError, so no raw identity reaches the file.
    Thread-safe.
    """

    def __init__(self, path: StorePath | None, *, clock: Clock) -> None:
        self.path = None if path is None else os.fspath(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        if path is not None:
            self._conn = connect_durable(path, what="anti-passback store")
            try:
                self._conn.execute(_SCHEMA)
                rows = self._conn.execute("SELECT pseudonym, at FROM passages").fetchall()
            except sqlite3.Error as exc:
                self._conn.close()
                raise StoreError(f"anti-passback store {self.path}: {exc}") from exc
            self._last = {pseudonym: float(at) for pseudonym, at in rows}

    def last_passage(self, pseudonym: str) -> float | None:
        """Wall time of this subject's last recorded passage, or None if none is remembered."""
        # A plain dict read is atomic under the GIL; no lock on the hot path.
        return self._last.get(pseudonym)

    def record_passage(self, pseudonym: str, at: float) -> None:
        """Remember that this subject passed at wall time ``at`` (replacing any earlier one).

        The latest call wins even if ``at`` is earlier, so a wall clock stepped backwards does
        not keep a subject out for longer than the rule says.
        """
        if not isinstance(pseudonym, str) or not _PSEUDONYM.fullmatch(pseudonym):
            raise StoreError(
                "anti-passback: a subject must be a 20-hex-character pseudonym, never a raw ID"
            )
        with self._lock:
            self._require_open()
            if self._conn is not None:
                try:
                    self._conn.execute(
                        "INSERT INTO passages (pseudonym, at) VALUES (?, ?)"
                        " ON CONFLICT (pseudonym) DO UPDATE SET at = excluded.at",
                        (pseudonym, float(at)),
                    )
                except sqlite3.Error as exc:
                    raise StoreError(f"anti-passback store {self.path}: {exc}") from exc
            # After the disk write: the memory never claims what a restart would forget.
            self._last[pseudonym] = float(at)

    def prune(self, older_than_s: float) -> int:
        """Forget passages more than ``older_than_s`` seconds ago; return how many."""
        with self._lock:
            self._require_open()
            cutoff = self._clock.time() - older_than_s
            if self._conn is not None:
                try:
                    self._conn.execute("DELETE FROM passages WHERE at < ?", (cutoff,))
                except sqlite3.Error as exc:
                    raise StoreError(f"anti-passback store {self.path}: {exc}") from exc
            stale = [p for p, at in self._last.items() if at < cutoff]
            # Swap in a new dict rather than delete in place: lock-free lookups in other threads
            # then always see either the old or the new mapping, never one being resized.
            self._last = {p: at for p, at in self._last.items() if at >= cutoff}
            return len(stale)

    def __len__(self) -> int:
        """Subjects remembered."""
        return len(self._last)

    def close(self) -> None:
        """Close the database (if any); further writes raise StoreError."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise StoreError(f"anti-passback store {self.path}: closing: {exc}") from exc

    def _require_open(self) -> None:
        if self._closed:
            where = self.path or "memory"
            raise StoreError(f"anti-passback store {where}: store is closed")
