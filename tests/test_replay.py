"""Used pass jtis: refused until keep-until, forgotten after, remembered across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.clock import FakeClock
from kiosk.errors import StoreError
from kiosk.replay import ReplayStore, jti_key

JTI = "p4ss-Id_0001"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "replay.db"


def test_used_jti_refused_until_keep_until_then_forgotten(db: Path, clock: FakeClock) -> None:
    with ReplayStore(db, clock=clock) as replay:
        assert not replay.is_used(JTI)
        replay.mark_used(JTI, keep_until=clock.time() + 330)
        assert replay.is_used(JTI)
        assert not replay.is_used("other-jti-1")
        clock.advance(329.999)
        assert replay.is_used(JTI)
        clock.advance(0.001)
        assert not replay.is_used(JTI)  # keep-until is exclusive, like `now >= exp + L`
        assert replay.prune() == 1
        assert len(replay) == 0


def test_survives_reopen(db: Path, clock: FakeClock) -> None:
    with ReplayStore(db, clock=clock) as replay:
        replay.mark_used(JTI, keep_until=clock.time() + 60)
    with ReplayStore(db, clock=clock) as replay:
        assert replay.is_used(JTI)
    clock.advance(61)
    with ReplayStore(db, clock=clock) as replay:
        assert not replay.is_used(JTI)
        assert len(replay) == 0  # expired marks are pruned on open


def test_marking_again_never_shortens(db: Path, clock: FakeClock) -> None:
    with ReplayStore(db, clock=clock) as replay:
        replay.mark_used(JTI, keep_until=clock.time() + 100)
        replay.mark_used(JTI, keep_until=clock.time() + 10)
        clock.advance(50)
        assert replay.is_used(JTI)
        replay.mark_used(JTI, keep_until=clock.time() + 200)
        clock.advance(150)
        assert replay.is_used(JTI)


def test_prune_keeps_live_marks(db: Path, clock: FakeClock) -> None:
    with ReplayStore(db, clock=clock) as replay:
        replay.mark_used("short-jti-1", keep_until=clock.time() + 10)
        replay.mark_used("long-jti-22", keep_until=clock.time() + 1000)
        clock.advance(20)
        assert replay.prune() == 1
        assert replay.is_used("long-jti-22")
        assert len(replay) == 1


def test_file_holds_no_jti_in_clear(db: Path, clock: FakeClock) -> None:
    with ReplayStore(db, clock=clock) as replay:
        replay.mark_used(JTI, keep_until=clock.time() + 60)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT jti_hash FROM used_jti").fetchall()
    conn.close()
    assert rows == [(jti_key(JTI),)]
    assert len(jti_key(JTI)) == 32
    for f in db.parent.iterdir():
        assert JTI.encode() not in f.read_bytes()


def test_errors_are_store_errors_naming_the_file(tmp_path: Path, clock: FakeClock) -> None:
    missing = tmp_path / "nope" / "replay.db"
    with pytest.raises(StoreError, match="replay.db"):
        ReplayStore(missing, clock=clock)
    replay = ReplayStore(tmp_path / "r.db", clock=clock)
    replay.close()
    replay.close()
    with pytest.raises(StoreError, match="closed"):
        replay.is_used(JTI)
