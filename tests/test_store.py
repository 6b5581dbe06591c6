"""The event store: envelope per mqtt.md, durable seq, privacy guard, size bound, crash safety."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from kiosk.clock import FakeClock, rfc3339_ms
from kiosk.errors import KioskError, StoreError
from kiosk.store import FORBIDDEN_FIELDS, EventStore

REPO = Path(__file__).resolve().parent.parent
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def open_store(path: Path, clock: FakeClock, **kw: object) -> EventStore:
    return EventStore(path, kiosk_id="k-01", venue_id="gym-7", clock=clock, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.25)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


def decision(store: EventStore, subject: str = "0123456789abcdef0123") -> dict:
    return store.record(
        "decision",
        decision="admit",
        reason="admitted",
        st="green",
        via="online",
        source="camera",
        subject=subject,
        latency_ms=12.5,
    )


def test_event_fields_exactly_as_mqtt_md(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        event = decision(store)
    assert list(event) == [
        "event_id",
        "seq",
        "kiosk_id",
        "venue_id",
        "ts",
        "type",
        "decision",
        "reason",
        "st",
        "via",
        "source",
        "subject",
        "latency_ms",
    ]
    assert uuid.UUID(event["event_id"]).version == 4
    assert event["seq"] == 1
    assert (event["kiosk_id"], event["venue_id"], event["type"]) == ("k-01", "gym-7", "decision")
    assert event["ts"] == "2023-11-14T22:13:20.250Z" == rfc3339_ms(clock.time())
    assert TS.fullmatch(event["ts"])


def test_record_returns_what_is_stored(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        event = store.record("passage", st=None)
        assert store.get(event["seq"]) == event
        assert store.get(99) is None
    with open_store(db, clock) as store:
        assert store.get(1) == event


def test_seq_increments_and_survives_reopen(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        assert store.last_seq == 0
        assert [store.record("passage")["seq"] for _ in range(3)] == [1, 2, 3]
    with open_store(db, clock) as store:
        assert store.last_seq == 3
        assert store.record("passage")["seq"] == 4


def test_seq_never_reused_after_prune(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        for _ in range(5):
            store.record("passage")
        store.mark_delivered(range(1, 6))
        clock.advance(3600)
        assert store.prune(retention_s=60) == 5
        assert store.count() == 0
    with open_store(db, clock) as store:
        assert store.count() == 0
        assert store.last_seq == 5
        assert store.record("passage")["seq"] == 6


def test_event_ids_are_unique(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        ids = {store.record("passage")["event_id"] for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize("name", sorted(FORBIDDEN_FIELDS))
def test_privacy_guard_refuses_personal_field_names(db: Path, clock: FakeClock, name: str) -> None:
    with open_store(db, clock) as store:
        with pytest.raises(StoreError, match=name):
            store.record("decision", **{name: "920101300051"})
        assert store.count() == 0
        assert store.last_seq == 0
        # A refused event consumes no seq: consumers must not see a false gap.
        assert store.record("decision")["seq"] == 1


@pytest.mark.parametrize("subject", ["920101300051", "N12345678", "0123456789ABCDEF0123", 42])
def test_subject_must_be_a_pseudonym(db: Path, clock: FakeClock, subject: object) -> None:
    with open_store(db, clock) as store:
        with pytest.raises(StoreError, match="pseudonym"):
            store.record("decision", subject=subject)
        assert store.record("decision", subject=None)["subject"] is None
        assert store.count() == 1
    if isinstance(subject, str):  # the file (WAL checkpointed on close) never saw it
        assert subject.encode() not in db.read_bytes()


def test_envelope_fields_cannot_be_overridden(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        for name in ("event_id", "seq", "kiosk_id", "venue_id", "ts"):
            with pytest.raises(StoreError, match=name):
                store.record("decision", **{name: "x"})
        assert store.count() == 0


def test_non_json_body_is_refused_and_nothing_recorded(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        with pytest.raises(StoreError, match="JSON"):
            store.record("decision", latency_ms=float("nan"))
        with pytest.raises(StoreError, match="JSON"):
            store.record("decision", via=object())
        with pytest.raises(StoreError, match="type"):
            store.record("")
        assert store.count() == 0
        assert store.record("alarm")["seq"] == 1


def test_undelivered_in_seq_order_and_mark_delivered(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        for i in range(10):
            store.record("passage", n=i)
        assert [e["seq"] for e in store.undelivered(limit=3)] == [1, 2, 3]
        assert store.mark_delivered([2, 1, 3]) == 3
        # Marking again (a duplicate PUBACK) and unknown seqs change nothing.
        assert store.mark_delivered([1, 999]) == 0
        assert store.mark_delivered([]) == 0
        assert [e["seq"] for e in store.undelivered(limit=3)] == [4, 5, 6]
        store.mark_delivered([5])
        assert [e["seq"] for e in store.undelivered()] == [4, 6, 7, 8, 9, 10]
        assert store.undelivered_count() == 6
        assert store.count() == 10
        assert [e["n"] for e in store.events(after_seq=7)] == [7, 8, 9]
        assert [e["seq"] for e in store.events(limit=2)] == [1, 2]
    with open_store(db, clock) as store:
        assert [e["seq"] for e in store.undelivered()] == [4, 6, 7, 8, 9, 10]


def test_prune_keeps_undelivered_and_recent(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        store.record("passage")  # 1: old, delivered -> pruned
        store.record("passage")  # 2: old, undelivered -> kept
        clock.advance(100)
        store.record("passage")  # 3: recent, delivered -> kept
        store.mark_delivered([1, 3])
        clock.advance(50)
        assert store.prune(retention_s=120) == 1
        assert [e["seq"] for e in store.events()] == [2, 3]
        assert store.count() == 2


def test_size_bound_prunes_delivered_first(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock, max_events=5) as store:
        for _ in range(5):
            store.record("passage")
        store.mark_delivered([2, 4])
        store.record("passage")  # 6: evicts delivered 2
        store.record("passage")  # 7: evicts delivered 4
        assert [e["seq"] for e in store.events()] == [1, 3, 5, 6, 7]
        assert store.count() == 5
        assert store.dropped_count == 0


def test_size_bound_drops_oldest_undelivered_and_counts(
    db: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with open_store(db, clock, max_events=3) as store:
        for _ in range(3):
            store.record("decision")
        with caplog.at_level(logging.WARNING, logger="kiosk.store"):
            event = store.record("decision")
        assert event["seq"] == 4  # never refused
        assert [e["seq"] for e in store.events()] == [2, 3, 4]
        assert store.dropped_count == 1
        assert "dropped undelivered decision event seq 1" in caplog.text
        store.record("decision")
        assert store.dropped_count == 2
    with open_store(db, clock, max_events=3) as store:
        assert store.dropped_count == 2
        assert store.count() == 3
        assert [e["seq"] for e in store.undelivered()] == [3, 4, 5]


def test_lower_bound_on_reopen_shrinks_store(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        for _ in range(6):
            store.record("passage")
        store.mark_delivered([1, 2, 3])
    with open_store(db, clock, max_events=2) as store:
        store.record("passage")
        assert [e["seq"] for e in store.events()] == [6, 7]
        assert store.dropped_count == 2  # 4 and 5 were undelivered


def test_closed_store_raises_store_error(db: Path, clock: FakeClock) -> None:
    store = open_store(db, clock)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.record("passage")
    with pytest.raises(StoreError, match="closed"):
        store.undelivered()


def test_library_errors_name_the_file(tmp_path: Path, clock: FakeClock) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "events.db"
    with pytest.raises(StoreError, match=re.escape(str(missing))):
        open_store(missing, clock)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite database, just bytes" * 100)
    with pytest.raises(KioskError, match=re.escape(str(garbage))):
        open_store(garbage, clock)


def test_wal_and_full_sync(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock):
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_threads_record_and_deliver_concurrently(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        errors: list[BaseException] = []

        def producer() -> None:
            try:
                for _ in range(100):
                    store.record("passage")
            except BaseException as exc:  # noqa: BLE001 - pragma: no cover - reported below
                errors.append(exc)

        def outbox() -> None:
            try:
                delivered = 0
                while delivered < 200:
                    batch = store.undelivered(limit=17)
                    delivered += store.mark_delivered(e["seq"] for e in batch)
            except BaseException as exc:  # noqa: BLE001 - pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=producer) for _ in range(2)]
        threads.append(threading.Thread(target=outbox))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert store.last_seq == 200
        assert store.undelivered_count() == 0
        assert [e["seq"] for e in store.events()] == list(range(1, 201))


CHILD = textwrap.dedent(
    """
    import sys
    from kiosk.clock import SystemClock
    from kiosk.store import EventStore

    store = EventStore(sys.argv[1], kiosk_id="k-01", venue_id="gym-7", clock=SystemClock())
    n = 0
    while True:
        n += 1
        event = store.record("decision", decision="deny", reason="expired", n=n)
        # Printed only after record() returned: every printed line is an acknowledgement.
        print(event["seq"], event["event_id"], flush=True)
    """
)


def test_sigkill_loses_no_acknowledged_event(db: Path, clock: FakeClock) -> None:
    with open_store(db, clock) as store:
        for _ in range(3):
            store.record("passage")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    acked: dict[int, str] = {}
    try:
        assert child.stdout is not None
        while len(acked) < 150:
            line = child.stdout.readline()
            assert line, f"child ended early: {child.stderr.read() if child.stderr else ''}"
            seq, event_id = line.split()
            acked[int(seq)] = event_id
        # Kill mid-stream: the child is inside record() or about to be.
        os.kill(child.pid, signal.SIGKILL)
        # Lines written before the kill are acknowledgements too.
        for line in child.stdout:
            seq, event_id = line.split()
            acked[int(seq)] = event_id
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert sorted(acked) == list(range(4, 4 + len(acked)))

    with open_store(db, clock) as store:
        for seq, event_id in acked.items():
            event = store.get(seq)
            assert event is not None, f"acknowledged seq {seq} lost"
            assert event["event_id"] == event_id
            assert event["n"] == seq - 3
        stored = [e["seq"] for e in store.events()]
        # At most one event past the last acknowledgement: committed but not yet printed.
        assert stored == list(range(1, store.last_seq + 1))
        assert store.last_seq - max(acked) in (0, 1)
        # The raw rows are valid JSON, too (the outbox publishes them verbatim).
        conn = sqlite3.connect(db)
        for seq, body in conn.execute("SELECT seq, body FROM events"):
            assert json.loads(body)["seq"] == seq
        conn.close()
        nxt = store.record("passage")["seq"]
        assert nxt == store.last_seq == max(stored) + 1
