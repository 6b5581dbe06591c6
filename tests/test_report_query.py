"""Reading the event store for a report: read-only, beside a running daemon, and one clear
line (exit 2, no traceback) for a missing, locked, corrupt or truncated store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.clock import FakeClock
from kiosk.errors import StoreError
from kiosk.report.query import read_period
from kiosk.store import EventStore
from support import REPO

T0 = 1_764_500_000.0  # 2025-11-30 10:53:20 UTC
DAY = "2025-11-30"


def fill(path: Path, n: int, *, start: float = T0) -> None:
    clock = FakeClock(start)
    with EventStore(path, kiosk_id="k1", venue_id="v1", clock=clock) as store:
        for i in range(n):
            store.record(
                "decision",
                decision="admit",
                reason="admitted",
                st="green",
                via="online",
                source="camera",
                subject=None,
                latency_ms=1.0 + i,
            )
            clock.advance(1.0)


def report(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *args: str) -> str:
    code, out, err = report(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


def test_missing_store_says_so_and_creates_nothing(capsys, tmp_path):
    err = one_line_error(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert err == (
        f"kiosk report: no event store at {tmp_path / 'events.sqlite'} (has the kiosk run here?)"
    )
    assert list(tmp_path.iterdir()) == []


def test_missing_store_through_the_real_command(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "report", "--state-dir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.strip() == (
        f"kiosk report: no event store at {tmp_path / 'nowhere' / 'events.sqlite'}"
        " (has the kiosk run here?)"
    )


def test_empty_store_gives_zeros_and_a_note(capsys, tmp_path):
    EventStore(tmp_path / "events.sqlite", kiosk_id="k1", venue_id="v1", clock=FakeClock()).close()
    code, out, _ = report(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert code == 0
    assert "Decisions                        0" in out
    assert "Entries                          0" in out
    assert "Note: no events were recorded in this period" in out


def test_an_empty_file_is_a_store_with_nothing_yet(capsys, tmp_path):
    (tmp_path / "events.sqlite").write_bytes(b"")
    code, out, _ = report(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert code == 0
    assert "Note: the event store holds no events yet" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite"]


def test_garbage_is_a_clear_error(capsys, tmp_path):
    (tmp_path / "events.sqlite").write_bytes(os.urandom(8192))
    err = one_line_error(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert err == (
        f"kiosk report: event store {tmp_path / 'events.sqlite'} is not an SQLite database"
        " (damaged or wrong file)"
    )


def test_garbage_after_a_good_header_is_damage(capsys, tmp_path):
    path = tmp_path / "events.sqlite"
    fill(path, 200)
    data = bytearray(path.read_bytes())
    data[100:] = os.urandom(len(data) - 100)  # the header survives, the pages do not
    path.write_bytes(bytes(data))
    err = one_line_error(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert err.startswith(f"kiosk report: event store {path} ")
    assert "damaged" in err or "not an SQLite database" in err


def test_truncated_store_is_a_clear_error(capsys, tmp_path):
    path = tmp_path / "events.sqlite"
    fill(path, 500)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    err = one_line_error(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert err == (
        f"kiosk report: event store {path} is truncated ({size // 2} of {size} bytes):"
        " a copy cut short or a damaged card"
    )


def test_not_a_kiosk_store(capsys, tmp_path):
    conn = sqlite3.connect(tmp_path / "events.sqlite")
    conn.execute("CREATE TABLE photos (x)")
    conn.commit()
    conn.close()
    err = one_line_error(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert err.endswith("is not a kiosk event store (it has no events table)")


def rollback_store(path: Path) -> sqlite3.Connection:
    """The store's schema in rollback-journal mode, held under an exclusive lock."""
    fill(path, 3)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_locked_store_waits_then_says_so(tmp_path):
    holder = rollback_store(tmp_path / "events.sqlite")
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match=r"is locked by another process \(waited 0.3 s\)"):
            read_period(tmp_path / "events.sqlite", 0, 2e9, busy_wait_s=0.3)
        assert time.monotonic() - t0 >= 0.3  # it did wait
        holder.execute("ROLLBACK")
        assert len(read_period(tmp_path / "events.sqlite", 0, 2e9).events) == 3
    finally:
        holder.close()


def test_locked_store_through_the_command(capsys, tmp_path):
    holder = rollback_store(tmp_path / "events.sqlite")
    try:
        err = one_line_error(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    finally:
        holder.close()
    assert err == (
        f"kiosk report: event store {tmp_path / 'events.sqlite'} is locked by another process"
        " (waited 2 s); try again in a moment"
    )


def test_reads_beside_a_writing_daemon_and_creates_nothing(tmp_path):
    path = tmp_path / "events.sqlite"
    clock = FakeClock(T0)
    store = EventStore(path, kiosk_id="k1", venue_id="v1", clock=clock)
    try:
        store.record("passage", direction="entry", subject=None, occupancy=1)
        before = sorted(p.name for p in tmp_path.iterdir())
        assert before == ["events.sqlite", "events.sqlite-shm", "events.sqlite-wal"]
        assert len(read_period(path, 0, 2e9).events) == 1
        store.record("passage", direction="exit", subject=None, occupancy=0)
        # The latest commit (still in the WAL) is seen.
        assert [e["direction"] for _, e in read_period(path, 0, 2e9).events] == ["entry", "exit"]
        assert sorted(p.name for p in tmp_path.iterdir()) == before
        store.record("passage", direction="entry", subject=None, occupancy=1)  # still writable
    finally:
        store.close()


def test_a_closed_store_is_read_without_creating_wal_or_shm(tmp_path):
    # A plain mode=ro reader would create events.sqlite-wal and -shm, owned by whoever runs
    # the report; a daemon running as another user could then not open its own store.
    path = tmp_path / "events.sqlite"
    fill(path, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite"]
    assert len(read_period(path, 0, 2e9).events) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite"]
    fill(path, 1, start=T0 + 100)  # and the daemon can open it again afterwards
    assert len(read_period(path, 0, 2e9).events) == 6


def test_a_wal_without_its_index_is_read_from_a_snapshot(tmp_path):
    # A writer in exclusive locking mode keeps the WAL index in its own memory: no -shm.
    path = tmp_path / "events.sqlite"
    fill(path, 2)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA locking_mode=EXCLUSIVE")
        writer.execute(
            "INSERT INTO events (seq, event_id, ts, recorded_at, type, body)"
            " SELECT seq + 10, event_id || 'x', ts, recorded_at, type, body FROM events"
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite", "events.sqlite-wal"]
        assert len(read_period(path, 0, 2e9).events) == 4
        assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite", "events.sqlite-wal"]
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "2025-13-01"], "--day: '2025-13-01' is not a date (write YYYY-MM-DD)"),
        (["--day", "yesterday"], "--day: 'yesterday' is not a date (write YYYY-MM-DD)"),
        (
            ["--from", "18:00"],
            "--from: '18:00' is not a time (write RFC 3339 (2026-12-01T18:00:00+05:00)"
            " or local YYYY-MM-DD HH:MM)",
        ),
        (
            ["--from", "2025-11-30 18:00", "--to", "2025-11-30 17:00"],
            "--to (2025-11-30 17:00) must be after --from (2025-11-30 18:00)",
        ),
        (["--to", "2025-11-30 17:00"], "--to needs --from"),
        (["--day", DAY, "--from", "2025-11-30 17:00"], "give --day, or --from and --to, not both"),
        (
            ["--tz", "Mars/Olympus"],
            "--tz: 'Mars/Olympus' is not a known time zone (e.g. Asia/Almaty)",
        ),
    ],
)
def test_bad_period_options(capsys, tmp_path, args, message):
    fill(tmp_path / "events.sqlite", 1)
    err = one_line_error(capsys, "--state-dir", str(tmp_path), *args)
    assert err == f"kiosk report: {message}"


CRASH = """
import os, sys
from kiosk.clock import FakeClock
from kiosk.store import EventStore
store = EventStore(sys.argv[1], kiosk_id="k1", venue_id="v1", clock=FakeClock(1_764_500_000.0))
for _ in range(3):
    store.record("passage", direction="entry", subject=None, occupancy=1)
os._exit(0)  # a crash: no close, so no checkpoint; the events are in the WAL only
"""


def test_a_store_left_by_a_crashed_daemon_is_read_with_its_wal(tmp_path):
    path = tmp_path / "events.sqlite"
    subprocess.run([sys.executable, "-c", CRASH, str(path)], check=True, cwd=REPO, timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["events.sqlite", "events.sqlite-shm", "events.sqlite-wal"]
    assert len(read_period(path, 0, 2e9).events) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == left


def test_an_unreadable_event_is_counted_apart(capsys, tmp_path):
    path = tmp_path / "events.sqlite"
    fill(path, 2)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO events (seq, event_id, ts, recorded_at, type, body)"
        " VALUES (99, 'x', '', ?, 'decision', '{not json')",
        (T0 + 10,),
    )
    conn.commit()
    conn.close()
    code, out, _ = report(capsys, "--state-dir", str(tmp_path), "--day", DAY)
    assert code == 0
    assert "Decisions                        2" in out
    assert "Note: 1 event in the period could not be read (not counted)" in out
