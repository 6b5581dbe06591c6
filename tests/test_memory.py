"""The gate's short memories come back from the event store after a restart."""

from __future__ import annotations

from kiosk.clock import FakeClock
from kiosk.memory import seed_gate_memory
from kiosk.passback import PassbackMemory
from kiosk.replay import ReplayStore, jti_key
from kiosk.store import EventStore

SUBJECT = "0123456789abcdef0123"


def test_recent_passages_rebuild_replay_and_passback(tmp_path):
    clock = FakeClock(1_800_000_000)
    path = tmp_path / "events.sqlite"
    with EventStore(path, kiosk_id="k", venue_id="v", clock=clock) as store:
        store.record(
            "passage",
            direction="entry",
            subject=SUBJECT,
            pass_ref=jti_key("jti-recent-1"),
            pass_exp=int(clock.time()) + 200,
        )
        store.record("passage", direction="exit", subject=None)
    clock.advance(60)
    replay, passback = ReplayStore(":memory:", clock=clock), PassbackMemory(None, clock=clock)
    n = seed_gate_memory(
        path, replay=replay, passback=passback, now=clock.time(), leeway_s=30, anti_passback_s=0
    )
    assert n == 2
    assert replay.is_used("jti-recent-1") and not replay.is_used("another-jti")
    assert passback.last_passage(SUBJECT) == 1_800_000_000
    clock.advance(200 + 30)  # past exp + leeway: the pass may no longer be refused as replayed
    assert not replay.is_used("jti-recent-1")


def test_old_passages_are_not_read(tmp_path):
    clock = FakeClock(1_800_000_000)
    path = tmp_path / "events.sqlite"
    with EventStore(path, kiosk_id="k", venue_id="v", clock=clock) as store:
        store.record("passage", direction="entry", subject=SUBJECT)
    clock.advance(7200)
    passback = PassbackMemory(None, clock=clock)
    seed_gate_memory(
        path,
        replay=ReplayStore(":memory:", clock=clock),
        passback=passback,
        now=clock.time(),
        leeway_s=30,
        anti_passback_s=3600,
    )
    assert passback.last_passage(SUBJECT) is None


def test_a_missing_store_is_empty(tmp_path):
    clock = FakeClock()
    assert (
        seed_gate_memory(
            tmp_path / "none.sqlite",
            replay=ReplayStore(":memory:", clock=clock),
            passback=PassbackMemory(None, clock=clock),
            now=clock.time(),
            leeway_s=30,
            anti_passback_s=60,
        )
        == 0
    )
