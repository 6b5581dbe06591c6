"""Anti-passback memory: last passage per pseudonym, persisted, never keyed by a raw ID."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.clock import FakeClock
from kiosk.errors import StoreError
from kiosk.passback import PassbackMemory

ALICE = "0123456789abcdef0123"
BOB = "fedcba9876543210fedc"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.mark.parametrize("persisted", [True, False])
def test_records_and_looks_up(tmp_path: Path, clock: FakeClock, persisted: bool) -> None:
    path = tmp_path / "passback.db" if persisted else None
    with PassbackMemory(path, clock=clock) as memory:
        assert memory.last_passage(ALICE) is None
        memory.record_passage(ALICE, clock.time())
        clock.advance(5)
        memory.record_passage(BOB, clock.time())
        assert memory.last_passage(ALICE) == 1_700_000_000.0
        assert memory.last_passage(BOB) == 1_700_000_005.0
        memory.record_passage(ALICE, 1_700_000_003.0)  # the latest call wins
        assert memory.last_passage(ALICE) == 1_700_000_003.0
        assert len(memory) == 2


def test_survives_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "passback.db"
    with PassbackMemory(path, clock=clock) as memory:
        memory.record_passage(ALICE, clock.time())
    with PassbackMemory(path, clock=clock) as memory:
        assert memory.last_passage(ALICE) == clock.time()
        assert memory.last_passage(BOB) is None


@pytest.mark.parametrize("persisted", [True, False])
def test_prune_forgets_old_passages(tmp_path: Path, clock: FakeClock, persisted: bool) -> None:
    path = tmp_path / "passback.db" if persisted else None
    with PassbackMemory(path, clock=clock) as memory:
        memory.record_passage(ALICE, clock.time())
        clock.advance(100)
        memory.record_passage(BOB, clock.time())
        clock.advance(10)
        assert memory.prune(older_than_s=60) == 1
        assert memory.last_passage(ALICE) is None
        assert memory.last_passage(BOB) is not None
    if path is not None:
        with PassbackMemory(path, clock=clock) as memory:
            assert memory.last_passage(ALICE) is None
            assert len(memory) == 1


@pytest.mark.parametrize(
    "subject",
    ["920101300051", "N12345678", "0123456789ABCDEF0123", "0123456789abcdef012", ALICE + "0"],
)
def test_refuses_anything_but_a_pseudonym(tmp_path: Path, clock: FakeClock, subject: str) -> None:
    path = tmp_path / "passback.db"
    with PassbackMemory(path, clock=clock) as memory:
        with pytest.raises(StoreError, match="pseudonym"):
            memory.record_passage(subject, clock.time())
        assert len(memory) == 0
    assert subject.encode() not in path.read_bytes()


def test_errors_are_store_errors(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(StoreError, match="passback.db"):
        PassbackMemory(tmp_path / "nope" / "passback.db", clock=clock)
    memory = PassbackMemory(None, clock=clock)
    memory.close()
    with pytest.raises(StoreError, match="closed"):
        memory.record_passage(ALICE, 0.0)
