"""kiosk/gate/window.py: one admission, one passage; relock retries; the hold-off."""

from __future__ import annotations

from drivers.gpio import GpioBoard
from kiosk.clock import FakeClock
from kiosk.errors import DeviceError
from kiosk.gate.window import (
    PASSAGE_HOLDOFF_S,
    RELOCK_RETRY_S,
    RELOCK_TIMER,
    UNLOCK_TIMER,
    Admission,
    AdmissionWindow,
    Beam,
)
from kiosk.timers import Timers
from simulators.turnstile import SimPinFactory


def make(unlock_s: float = 5.0):
    clock = FakeClock()
    timers = Timers()
    board = GpioBoard.from_config({"relay": 17}, {}, pin_factory=SimPinFactory())
    told: list[tuple[bool, str]] = []
    window = AdmissionWindow(
        turnstile=board.turnstile,
        timers=timers,
        clock=clock,
        unlock_s=unlock_s,
        relay_state=lambda ok, detail: told.append((ok, detail)),
    )
    return window, board, timers, clock, told


def test_an_admission_frees_the_turnstile_until_its_timer():
    window, board, timers, clock, _ = make(unlock_s=5.0)
    try:
        window.open(Admission(0, "ps", None, None, "decision"))
        assert board.turnstile.is_free and window.is_open
        assert timers.next_due() == clock.monotonic() + 5.0
        [(name, ticket)] = timers.pop_due(clock.monotonic() + 5.0)
        assert name == UNLOCK_TIMER and window.expired(ticket)
        assert window.close(relock=True) is not None
        assert not board.turnstile.is_free and not window.is_open
        assert not window.expired(ticket)  # a window once closed does not expire again
    finally:
        board.close()


def test_a_beam_break_is_the_admitted_one_the_same_person_or_unadmitted():
    window, board, _, clock, _ = make()
    try:
        assert window.beam(clock.monotonic()) is Beam.UNADMITTED
        clock.advance(PASSAGE_HOLDOFF_S)
        window.open(Admission(0, "ps", None, None, "decision"))
        assert window.beam(clock.monotonic()) is Beam.ADMITTED
        window.close(relock=True)
        clock.advance(PASSAGE_HOLDOFF_S - 0.01)
        assert window.beam(clock.monotonic()) is Beam.HELD_OFF  # a bag, a hesitation
        clock.advance(0.02)
        assert window.beam(clock.monotonic()) is Beam.UNADMITTED
    finally:
        board.close()


def test_a_turnstile_that_will_not_lock_is_retried_and_said_once_each_way():
    window, board, timers, clock, told = make()
    real_lock = board.turnstile.lock

    def broken() -> None:
        raise DeviceError("relay driver gone")

    board.turnstile.lock = broken  # type: ignore[method-assign]
    try:
        window.relock()
        assert told == [(False, "could not lock the turnstile (DeviceError); retrying")]
        assert timers.pop_due(clock.monotonic() + RELOCK_RETRY_S) == [(RELOCK_TIMER, None)]
        board.turnstile.lock = real_lock  # type: ignore[method-assign]
        window.relock()
        assert told[-1] == (True, "turnstile locked") and not timers.pending(RELOCK_TIMER)
    finally:
        board.close()
