"""Used pass identifiers (``jti``), remembered across restarts so a pass admits only once.

credentials.md: once a pass has admitted someone and the turnstile reported the passage, its
``jti`` is refused (``replayed``) at this kiosk until ``exp + L``. An admission that timed out
without a passage is not marked, so that pass may be shown again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading

from kiosk.clock import Clock
from kiosk.errors import StoreError
from kiosk.store import Closing, StorePath, connect_durable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS used_jti (
    jti_hash   TEXT PRIMARY KEY,
    keep_until REAL NOT NULL
) WITHOUT ROWID
"""


def jti_key(jti: str) -> str:
    """The stored form of a ``jti``: a SHA-256 prefix (128 bits), so the file lists no passes."""
    return hashlib.sha256(jti.encode()).hexdigest()[:32]


class ReplayStore(Closing):
    """Durable set of used ``jti``s, each kept until its keep-until wall time (``exp + L``).

    SQLite in WAL mode with ``synchronous=FULL``, its own table in the file given by the
    caller: ``mark_used()`` returns only once the mark would survive a power cut. Expired
    marks are dropped on open and by ``prune()``. Thread-safe; sqlite3 errors become
    StoreError naming the file.
    """

    def __init__(self, path: StorePath, *, clock: Clock) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = connect_durable(path, what="replay store")
        try:
            self._execute(_SCHEMA)
        except StoreError:
            self._conn.close()
            self._conn = None
            raise
        self.prune()

    def is_used(self, jti: str) -> bool:
        """True if this ``jti`` was marked used and its keep-until time has not yet passed."""
        row = self._execute(
            "SELECT keep_until FROM used_jti WHERE jti_hash = ?", (jti_key(jti),)
        ).fetchone()
        # Compare with the clock rather than rely on prune(): an unpruned old mark is forgotten.
        return row is not None and self._clock.time() < row[0]

    def mark_used(self, jti: str, keep_until: float) -> None:
        """Remember ``jti`` as used until wall time ``keep_until``; committed durably on return.

        Marking again never shortens an existing mark.
        """
        self.mark_used_ref(jti_key(jti), keep_until)

    def mark_used_ref(self, ref: str, keep_until: float) -> None:
        """The same, for a jti already hashed with `jti_key` (as passage events carry it)."""
        self._execute(
            "INSERT INTO used_jti (jti_hash, keep_until) VALUES (?, ?)"
            " ON CONFLICT (jti_hash) DO UPDATE"
            " SET keep_until = max(keep_until, excluded.keep_until)",
            (ref, float(keep_until)),
        )

    def prune(self) -> int:
        """Forget marks whose keep-until time has passed; return how many."""
        cur = self._execute("DELETE FROM used_jti WHERE keep_until <= ?", (self._clock.time(),))
        return cur.rowcount

    def __len__(self) -> int:
        """Marks stored, expired ones not yet pruned included."""
        return self._execute("SELECT count(*) FROM used_jti").fetchone()[0]

    def close(self) -> None:
        """Close the database; further calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise StoreError(f"replay store {self.path}: closing: {exc}") from exc

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        # Autocommit mode: each single statement is its own durable transaction.
        with self._lock:
            if self._conn is None:
                raise StoreError(f"replay store {self.path}: store is closed")
            try:
                return self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"replay store {self.path}: {exc}") from exc
