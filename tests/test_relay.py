"""The turnstile relay on gpiozero's mock pins, and the driver's own limit on an unlock.

The limit's timer is injected (``FakeTimers``): a test fires it by hand, so nothing here
waits for the limit to come round except the two tests of the real timer.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from gpiozero import OutputDevice
from gpiozero.exc import GPIOZeroError
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.relay import (
    DEFAULT_HOLD_S,
    HOLD_MAX_S,
    HOLD_MIN_S,
    LIMIT_FIRED,
    LIMIT_MARGIN_S,
    RETRY_S,
    RelayTurnstile,
    bounded_hold,
)
from gate_rig import Rig
from kiosk.devices import Light
from kiosk.errors import DeviceError
from support import wait_until

RELAY = 17
TIMEOUT = 15.0  # generous: a busy 2-core machine may stall a thread for seconds
POLARITY_AND_SITE = pytest.mark.parametrize(
    ("active_high", "fail_safe"), [(True, False), (False, False), (True, True), (False, True)]
)


def levels(pin: MockPin) -> list[float]:
    """The pin's timeline as levels."""
    return [float(s.state) for s in pin.states]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """Mock pins without PWM (gpiozero's default mock)."""
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def closing() -> Iterator[list[Callable[[], None]]]:
    """Closers run at teardown (before the factory fixture resets its pins)."""
    closers: list[Callable[[], None]] = []
    yield closers
    for close in reversed(closers):
        close()


@dataclass
class FakeTimer:
    """One armed limit: its delay and function; the test calls ``fire``."""

    delay_s: float
    fn: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        """Run the function as the timer's thread would: even if cancelled (a late thread)."""
        self.fn()


class FakeTimers:
    """The timer factory the driver is given in tests: records every timer it starts."""

    def __init__(self) -> None:
        self.started: list[FakeTimer] = []

    def __call__(self, delay_s: float, fn: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay_s, fn)
        self.started.append(timer)
        return timer

    @property
    def last(self) -> FakeTimer:
        return self.started[-1]


def make_relay(
    factory: MockFactory,
    closing: list[Callable[[], None]],
    timers: FakeTimers | None = None,
    **kwargs: bool,
) -> RelayTurnstile:
    if timers is not None:
        relay = RelayTurnstile(RELAY, pin_factory=factory, timer_factory=timers, **kwargs)
    else:
        relay = RelayTurnstile(RELAY, pin_factory=factory, **kwargs)
    closing.append(relay.close)
    return relay


def pin_level(*, active_high: bool, energised: bool) -> float:
    return 1.0 if energised == active_high else 0.0


def locked_level(active_high: bool, fail_safe: bool) -> float:
    # Fail-secure: locked = released; fail-safe: locked = energised.
    return pin_level(active_high=active_high, energised=fail_safe)


def free_level(active_high: bool, fail_safe: bool) -> float:
    return pin_level(active_high=active_high, energised=not fail_safe)


def limit_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == LIMIT_FIRED]


# -- the relay --------------------------------------------------------------------------------


def test_relay_is_released_from_the_instant_it_exists(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    pin = factory.pin(RELAY)
    relay = RelayTurnstile(RELAY, pin_factory=factory)
    closing.append(relay.close)
    assert pin.function == "output"
    assert levels(pin) == [0.0]  # never a high state before free()
    assert not relay.is_free and not relay.energised
    relay.free()
    relay.lock()
    relay.free()
    relay.release()
    assert levels(pin) == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert not relay.is_free


def test_active_low_relay_never_drops_low_at_creation(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    pin = factory.pin(RELAY)
    pin.pull = "up"  # as the relay board's own pull-up holds it before the kiosk starts
    pin.clear_states()
    relay = RelayTurnstile(RELAY, active_high=False, pin_factory=factory)
    closing.append(relay.close)
    assert levels(pin) == [1.0]
    relay.free()
    assert relay.is_free and relay.energised and pin.state == 0
    relay.lock()
    assert levels(pin) == [1.0, 0.0, 1.0]
    relay.close()
    assert pin.state == 1


@pytest.mark.parametrize("active_high", [True, False])
def test_fail_safe_site_frees_by_releasing(
    factory: MockFactory, closing: list[Callable[[], None]], active_high: bool
) -> None:
    pin = factory.pin(RELAY)
    relay = RelayTurnstile(RELAY, active_high=active_high, fail_safe=True, pin_factory=factory)
    closing.append(relay.close)
    released = 0.0 if active_high else 1.0
    energised = 1.0 - released
    assert pin.state == released and relay.is_free  # released = free on a fail-safe site
    relay.lock()
    assert pin.state == energised and not relay.is_free
    relay.free()
    assert pin.state == released and relay.is_free
    relay.lock()
    relay.release()
    assert pin.state == released and relay.is_free


@pytest.mark.parametrize("fail_safe", [False, True])
def test_close_leaves_the_relay_released(factory: MockFactory, fail_safe: bool) -> None:
    pin = factory.pin(RELAY)
    relay = RelayTurnstile(RELAY, fail_safe=fail_safe, pin_factory=factory)
    energise = relay.lock if fail_safe else relay.free
    energise()
    assert pin.state == 1
    relay.close()
    relay.close()  # twice is harmless
    assert pin.state == 0
    relay.release()  # a released relay stays released
    with pytest.raises(DeviceError, match="closed"):
        energise()
    # The pin is given back.
    OutputDevice(RELAY, pin_factory=factory).close()


def test_relay_pin_errors_are_device_errors(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    with pytest.raises(DeviceError, match="turnstile relay on GPIO99"):
        RelayTurnstile(99, pin_factory=factory)
    relay = RelayTurnstile(RELAY, pin_factory=factory)
    closing.append(relay.close)
    with pytest.raises(DeviceError, match="GPIO17"):
        RelayTurnstile(RELAY, pin_factory=factory)


# -- the driver's own limit on an unlock ------------------------------------------------------


@POLARITY_AND_SITE
def test_a_controller_that_stops_answering_is_locked_out_by_the_limit(
    factory: MockFactory,
    closing: list[Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
    active_high: bool,
    fail_safe: bool,
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers, active_high=active_high, fail_safe=fail_safe)
    pin = factory.pin(RELAY)
    relay.lock()  # start from locked on every site (a fail-safe site starts free)
    relay.free(hold_s=2.0)
    assert relay.is_free and pin.state == free_level(active_high, fail_safe)
    [timer] = timers.started
    assert timer.delay_s == pytest.approx(2.0 + LIMIT_MARGIN_S)
    assert relay.limit_armed
    # The controller never calls lock(): the limit comes round.
    with caplog.at_level(logging.WARNING, logger="drivers.relay"):
        timer.fire()
    assert not relay.is_free and pin.state == locked_level(active_high, fail_safe)
    assert not relay.limit_armed
    [line] = limit_lines(caplog)
    assert line.levelno == logging.WARNING
    # The controller's own relock, late, changes nothing and logs nothing more.
    relay.lock()
    assert pin.state == locked_level(active_high, fail_safe) and len(limit_lines(caplog)) == 1


@POLARITY_AND_SITE
def test_an_emergency_hold_is_not_ended_by_the_driver(
    factory: MockFactory, closing: list[Callable[[], None]], active_high: bool, fail_safe: bool
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers, active_high=active_high, fail_safe=fail_safe)
    relay.lock()
    relay.free(hold_s=1.0)  # an admission's window open when the fire alarm comes
    admission = timers.last
    relay.hold_free()
    assert admission.cancelled and not relay.limit_armed
    assert len(timers.started) == 1  # no limit for the emergency hold
    admission.fire()  # its thread ran anyway: it finds a newer command and does nothing
    assert relay.is_free and factory.pin(RELAY).state == free_level(active_high, fail_safe)
    relay.lock()  # only an explicit lock ends the hold
    assert not relay.is_free


@POLARITY_AND_SITE
def test_lock_before_the_limit_cancels_it(
    factory: MockFactory,
    closing: list[Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
    active_high: bool,
    fail_safe: bool,
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers, active_high=active_high, fail_safe=fail_safe)
    pin = factory.pin(RELAY)
    relay.lock()
    pin.clear_states()
    relay.free(hold_s=1.0)
    relay.lock()  # the passage came: the controller relocks in time
    assert timers.last.cancelled and not relay.limit_armed
    with caplog.at_level(logging.WARNING, logger="drivers.relay"):
        timers.last.fire()  # too late to be stopped: still does nothing
    assert not limit_lines(caplog)
    free, locked = free_level(active_high, fail_safe), locked_level(active_high, fail_safe)
    assert levels(pin) == [locked, free, locked]


def test_a_second_admission_after_an_early_lock_gets_its_full_window(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers)
    relay.free(hold_s=5.0)
    first = timers.last
    relay.lock()  # the first person passed after 0.2 s
    relay.free(hold_s=3.0)  # the next person is admitted
    second = timers.last
    assert first is not second and second.delay_s == pytest.approx(3.0 + LIMIT_MARGIN_S)
    first.fire()  # the first admission's limit must not cut the second one short
    assert relay.is_free and relay.limit_armed
    second.fire()
    assert not relay.is_free


def test_free_twice_rearms_the_limit(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers)
    relay.free(hold_s=1.0)
    relay.free(hold_s=1.0)
    first, second = timers.started
    assert first.cancelled and not second.cancelled
    first.fire()
    assert relay.is_free
    second.fire()
    assert not relay.is_free


def test_release_and_close_cancel_the_limit(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers)
    relay.free(hold_s=1.0)
    relay.release()
    assert timers.last.cancelled
    relay.free(hold_s=1.0)
    relay.close()
    assert timers.last.cancelled
    timers.last.fire()  # a closed relay is left alone (and released)
    assert factory.pin(RELAY).state == 0


def test_free_without_a_hold_is_bounded_by_the_default_window(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers)
    relay.free()  # a forgotten argument: the safe default, never an unbounded hold
    assert timers.last.delay_s == pytest.approx(DEFAULT_HOLD_S + LIMIT_MARGIN_S)


@pytest.mark.parametrize(
    ("hold_s", "bounded"),
    [
        (math.nan, DEFAULT_HOLD_S),
        (math.inf, DEFAULT_HOLD_S),
        (-math.inf, DEFAULT_HOLD_S),
        (None, DEFAULT_HOLD_S),
        ("5", DEFAULT_HOLD_S),
        (1e9, HOLD_MAX_S),
        (60.0001, HOLD_MAX_S),
        (0.0, HOLD_MIN_S),
        (-3.0, HOLD_MIN_S),
        (0.01, HOLD_MIN_S),
    ],
)
def test_a_hold_outside_the_range_is_clamped_or_the_default(
    factory: MockFactory,
    closing: list[Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
    hold_s: object,
    bounded: float,
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers)
    with caplog.at_level(logging.WARNING, logger="drivers.relay"):
        relay.free(hold_s=hold_s)  # type: ignore[arg-type]
    assert timers.last.delay_s == pytest.approx(bounded + LIMIT_MARGIN_S)
    assert any("outside 0.1-60 s" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("hold_s", [HOLD_MIN_S, 5, 12.5, HOLD_MAX_S])
def test_a_hold_in_range_is_kept(hold_s: float) -> None:
    assert bounded_hold(hold_s) == hold_s


def test_a_limit_that_cannot_lock_keeps_trying(
    factory: MockFactory,
    closing: list[Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timers = FakeTimers()
    relay = make_relay(factory, closing, timers)
    relay.free(hold_s=1.0)
    device = relay._relay  # the pin refuses once, as a flaky GPIO chip might
    real_off = device.off
    calls = iter([GPIOZeroError("chip busy")])

    def flaky_off() -> None:
        error = next(calls, None)
        if error is not None:
            raise error
        real_off()

    monkeypatch.setattr(device, "off", flaky_off)
    with caplog.at_level(logging.WARNING, logger="drivers.relay"):
        timers.last.fire()
        assert relay.is_free and any("could not lock" in r.getMessage() for r in caplog.records)
        retry = timers.last
        assert retry.delay_s == RETRY_S
        retry.fire()
    assert not relay.is_free and len(limit_lines(caplog)) == 1


def test_a_limit_that_cannot_be_armed_never_frees(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    def no_threads(delay_s: float, fn: Callable[[], None]) -> FakeTimer:
        raise RuntimeError("can't start new thread")

    relay = make_relay(factory, closing, no_threads)  # type: ignore[arg-type]
    with pytest.raises(DeviceError, match="cannot arm its limit"):
        relay.free(hold_s=1.0)
    assert not relay.is_free and levels(factory.pin(RELAY)) == [0.0]


def test_the_real_timer_ends_an_unlock(
    factory: MockFactory, closing: list[Callable[[], None]], caplog: pytest.LogCaptureFixture
) -> None:
    relay = make_relay(factory, closing)  # threading.Timer
    with caplog.at_level(logging.WARNING, logger="drivers.relay"):
        relay.free(hold_s=HOLD_MIN_S)
        assert wait_until(lambda: not relay.is_free)
        assert wait_until(lambda: bool(limit_lines(caplog)))
    assert levels(factory.pin(RELAY)) == [0.0, 1.0, 0.0]


# -- with the real controller -----------------------------------------------------------------


def test_a_hung_controller_loop_still_relocks(
    tmp_path, status_service, population, issuer, caplog: pytest.LogCaptureFixture
) -> None:
    # The controller's loop hangs right after freeing the turnstile (a light driver stuck in
    # show()): its own unlock timer never runs, the driver's limit does.
    r = Rig(tmp_path, status_service.url, gate={"unlock_s": 0.3})
    hang = threading.Event()
    hung = threading.Event()
    show = r.board.indicator.show

    def show_or_hang(light: Light) -> None:
        if light is Light.ADMIT:
            hung.set()
            hang.wait(TIMEOUT)
        show(light)

    r.board.indicator.show = show_or_hang  # type: ignore[method-assign]
    r.start()
    try:
        with caplog.at_level(logging.WARNING, logger="drivers.relay"):
            r.model.expect_walk_away()
            green = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
            r.present(issuer.mint(green.sub, "green"))
            assert hung.wait(TIMEOUT)
            assert r.model.wait_for("relay_locked", timeout=TIMEOUT)
            assert hung.is_set() and not hang.is_set()  # the loop is still stuck
            # The driver logs just after it relocked: wait for the line, then count it.
            assert len(wait_until(lambda: limit_lines(caplog))) == 1
        assert r.relay_levels() == [0, 1, 0]
        hang.set()
        # The loop comes back: its window ends as an annulled admission, the relay stays put.
        r.wait(lambda e: e["type"] == "passage_timeout")
        assert r.relay_levels() == [0, 1, 0] and not r.board.turnstile.is_free
    finally:
        hang.set()
        r.stop()
