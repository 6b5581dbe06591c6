"""Reading the kiosk's event store for a report: read-only, safe while the daemon writes.

The store (kiosk/store.py) is SQLite in WAL mode. How it is opened depends on what is on
disk, because a plain ``mode=ro`` reader of a WAL database that nobody has open creates the
``-wal`` and ``-shm`` files itself, owned by whoever runs the report (root, with sudo), and a
daemon running as the service user could then no longer open its own store:

- ``-wal`` and ``-shm`` present (the daemon has the store open, or crashed): ``mode=ro``,
  which reads the latest commits through the daemon's shared-memory index and creates nothing;
- no ``-wal`` (nobody has it open; the last close checkpointed everything into the file):
  ``immutable=1``, which reads the file alone, takes no lock and creates nothing. Should the
  daemon start during the read, its first writes go to a new ``-wal``, not to this file;
- ``-wal`` without ``-shm`` (a writer in exclusive locking mode, or a deleted index): the two
  files are copied to a private temporary folder and the copy is read (WAL frames carry
  checksums, so a torn last frame is ignored);
- a database in rollback-journal mode (not the kiosk's, but possible): ``mode=ro`` with a
  short busy wait, as its readers create no files.

Every failure is a :class:`~kiosk.errors.StoreError` of one line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import StoreError

#: How long a reader waits for another process's lock before giving up.
BUSY_WAIT_S = 2.0

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100

#: A decision that tells whether the status service answered (the controller's own rule,
#: kiosk/controller.py ``_note_service``), or the daemon's start, which begins online.
_EVIDENCE = """
    (type = 'decision' AND json_valid(body) AND (
        json_extract(body, '$.via') IN ('online', 'pass')
        OR json_extract(body, '$.reason') IN ('backend_unavailable', 'clock_untrusted')))
    OR (type = 'mode' AND json_valid(body) AND json_extract(body, '$.cause') = 'start')
"""


@dataclass(frozen=True)
class Extract:
    """What a report needs from the store: the period's events, in record order, and the
    last event before it that said whether the kiosk was online."""

    path: str
    #: ``(recorded_at, event)`` pairs: the store's own clock reading, then the event.
    events: list[tuple[float, dict[str, Any]]]
    prior: dict[str, Any] | None = None
    #: Rows in the period whose body is not a JSON object (counted, not shown).
    unreadable: int = 0
    #: Whether any decision in the whole store was answered by the status service (only
    #: looked for when asked: ``probe_service``).
    ever_online: bool = False
    #: No events table yet (an empty file): the kiosk has recorded nothing.
    empty_store: bool = False


def read_period(
    path: str | os.PathLike[str],
    start: float,
    end: float,
    *,
    probe_service: bool = False,
    busy_wait_s: float = BUSY_WAIT_S,
) -> Extract:
    """The store's events recorded in ``[start, end)`` (epoch seconds), read-only.

    ``probe_service``: also look through the whole store for a decision the status service
    answered (when no configuration says whether the kiosk has one; up to a full scan).
    """
    where = os.fspath(path)
    _check_file(where)
    if os.path.getsize(where) == 0:
        return Extract(where, [], empty_store=True)
    with _connect(where, busy_wait_s) as conn:
        try:
            return _read(conn, where, start, end, probe_service)
        except sqlite3.Error as exc:
            raise _store_error(where, exc, busy_wait_s) from exc


def _read(
    conn: sqlite3.Connection, where: str, start: float, end: float, probe_service: bool
) -> Extract:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "events" not in tables:
        if tables - {"meta"}:
            raise StoreError(f"{where} is not a kiosk event store (it has no events table)")
        return Extract(where, [], empty_store=True)
    # One read transaction: the period and what came before it are the same snapshot.
    conn.execute("BEGIN")
    rows = conn.execute(
        "SELECT recorded_at, body FROM events"
        " WHERE recorded_at >= ? AND recorded_at < ? ORDER BY seq",
        (start, end),
    ).fetchall()
    events: list[tuple[float, dict[str, Any]]] = []
    unreadable = 0
    for recorded_at, body in rows:
        try:
            event = json.loads(body)
        except (TypeError, ValueError):
            event = None
        if isinstance(event, dict) and isinstance(recorded_at, int | float):
            events.append((float(recorded_at), event))
        else:
            unreadable += 1
    row = conn.execute(
        f"SELECT body FROM events WHERE recorded_at < ? AND ({_EVIDENCE})"
        " ORDER BY seq DESC LIMIT 1",
        (start,),
    ).fetchone()
    prior = json.loads(row[0]) if row else None
    prior = prior if isinstance(prior, dict) else None
    ever_online = probe_service and (
        conn.execute(
            "SELECT 1 FROM events WHERE type = 'decision' AND json_valid(body)"
            " AND json_extract(body, '$.via') = 'online' LIMIT 1"
        ).fetchone()
        is not None
    )
    return Extract(where, events, prior, unreadable, ever_online)


def _check_file(where: str) -> None:
    """Missing, unreadable, not a database or cut short: say so before SQLite guesses."""
    if not os.path.lexists(where):
        raise StoreError(f"no event store at {where} (has the kiosk run here?)")
    if not os.path.isfile(where):
        raise StoreError(f"event store {where} is not a regular file")
    try:
        with open(where, "rb") as f:
            header = f.read(_HEADER)
        size = os.path.getsize(where)
    except OSError as exc:
        raise StoreError(f"event store {where}: cannot read: {exc.strerror}") from exc
    if not header:
        return  # an empty file: SQLite's empty database
    if len(header) < _HEADER or not header.startswith(_MAGIC):
        raise StoreError(f"event store {where} is not an SQLite database (damaged or wrong file)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The size in the header counts only when the two change counters agree (SQLite's rule).
    if header[24:28] == header[92:96] and pages and size < pages * page_size:
        raise StoreError(
            f"event store {where} is truncated ({size} of {pages * page_size} bytes): "
            "a copy cut short or a damaged card"
        )


@contextlib.contextmanager
def _connect(where: str, busy_wait_s: float) -> Iterator[sqlite3.Connection]:
    """A read-only connection chosen by what is on disk (see the module's docstring)."""
    wal, shm = os.path.exists(where + "-wal"), os.path.exists(where + "-shm")
    with open(where, "rb") as f:
        is_wal = f.read(_HEADER)[18:20] == b"\x02\x02"
    uri = Path(where).resolve().as_uri()
    with contextlib.ExitStack() as stack:
        if is_wal and wal and not shm:
            uri = _snapshot(where, stack)
        elif is_wal and not wal:
            uri += "?immutable=1"
        else:
            uri += "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=busy_wait_s)
        except sqlite3.Error as exc:
            raise _store_error(where, exc, busy_wait_s) from exc
        stack.callback(conn.close)
        yield conn


def _snapshot(where: str, stack: contextlib.ExitStack) -> str:
    """Copy the database and its WAL to a private folder; the URI of the copy."""
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="kiosk-report-"))
    copy = os.path.join(folder, "events.sqlite")
    try:
        shutil.copyfile(where, copy)
        shutil.copyfile(where + "-wal", copy + "-wal")
    except OSError as exc:
        raise StoreError(f"event store {where}: cannot copy it to read: {exc.strerror}") from exc
    return Path(copy).as_uri()


def _store_error(where: str, exc: sqlite3.Error, busy_wait_s: float) -> StoreError:
    text = str(exc)
    if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or (
        "locked" in text
    ):
        return StoreError(
            f"event store {where} is locked by another process (waited {busy_wait_s:g} s); "
            "try again in a moment"
        )
    if "not a database" in text:
        return StoreError(f"event store {where} is not an SQLite database (damaged or wrong file)")
    if "malformed" in text:
        return StoreError(f"event store {where} is damaged ({text})")
    return StoreError(f"event store {where}: cannot read: {text}")
