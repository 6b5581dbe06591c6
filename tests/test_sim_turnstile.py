"""The simulated turnstile on mock pins, driven by the kiosk's own GPIO drivers."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import pytest
from gpiozero import PWMLED, DigitalInputDevice

from drivers.gpio import GpioInputs, RelayTurnstile
from kiosk.gate.inputs import ExitSensed, FireAlarmInput, PassageSensed
from simulators.turnstile import SimPin, SimPinFactory, TurnstileModel
from support import wait_until

RELAY, PASSAGE, EXIT, FIRE, LED_PIN = 17, 23, 5, 25, 27
TIMEOUT = 15.0  # generous: a busy 2-core machine may stall a thread for seconds


def lows(pin: SimPin) -> int:
    """How many times the pin went low after having been high."""
    states = [bool(s.state) for s in pin.states]
    return sum(1 for a, b in zip(states, states[1:], strict=False) if a and not b)


@pytest.fixture
def factory() -> Iterator[SimPinFactory]:
    f = SimPinFactory()
    yield f
    f.reset()


@pytest.fixture
def closing() -> Iterator[list[Callable[[], None]]]:
    """Closers run at teardown, last first (before the factory resets its pins)."""
    closers: list[Callable[[], None]] = []
    yield closers
    for close in reversed(closers):
        close()


def make_model(
    factory: SimPinFactory, closing: list[Callable[[], None]], **kwargs: object
) -> TurnstileModel:
    model = TurnstileModel(
        factory, relay_pin=RELAY, passage_pin=PASSAGE, exit_pin=EXIT, fire_pin=FIRE, **kwargs
    )
    closing.append(model.close)
    return model


def make_relay(
    factory: SimPinFactory, closing: list[Callable[[], None]], **kwargs: bool
) -> RelayTurnstile:
    relay = RelayTurnstile(RELAY, pin_factory=factory, **kwargs)
    closing.append(relay.close)
    return relay


# -- pins -------------------------------------------------------------------------------------


def test_sim_pins_notify_listeners_and_do_pwm(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    pin = factory.sim_pin(LED_PIN)
    seen: list[float] = []
    pin.add_listener(lambda p: seen.append(float(p.state)))
    led = PWMLED(LED_PIN, pin_factory=factory)
    closing.append(led.close)
    led.value = 0.2
    led.value = 0.2  # no change, no notification
    led.value = 1
    pin.remove_listener(seen.append)  # not registered: harmless
    assert seen == [pytest.approx(0.2), 1.0]
    assert pin.state == 1.0


def test_held_input_wins_over_the_pull_up(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    pin = factory.sim_pin(FIRE)
    pin.drive(False)  # the closed contact to ground
    device = DigitalInputDevice(FIRE, pull_up=True, pin_factory=factory)
    closing.append(device.close)
    assert pin.state == 0 and device.is_active
    pin.let_go()  # contact gone: the pull-up takes the pin high
    assert pin.state == 1 and not device.is_active


# -- the model --------------------------------------------------------------------------------


def test_model_sets_the_idle_levels(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    assert factory.pin(PASSAGE).state == 1
    assert factory.pin(EXIT).state == 1
    assert factory.pin(FIRE).state == 0
    assert not model.is_free and model.timeline == []


def test_model_follows_the_relay_at_once(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    relay = make_relay(factory, closing)
    assert model.events() == []  # creating the relay released it: no event
    relay.free()
    # The listener runs inside free(): no polling, no waiting.
    assert model.is_free and model.events() == ["relay_free"]
    assert len(model.relay_free_times) == 1
    relay.lock()
    relay.lock()
    assert model.events() == ["relay_free", "relay_locked"]


@pytest.mark.parametrize(
    ("active_high", "fail_safe"), [(False, False), (True, True), (False, True)]
)
def test_model_reads_relay_polarity_and_site(
    factory: SimPinFactory, closing: list[Callable[[], None]], active_high: bool, fail_safe: bool
) -> None:
    model = make_model(factory, closing, relay_active_high=active_high, fail_safe=fail_safe)
    relay = make_relay(factory, closing, active_high=active_high, fail_safe=fail_safe)
    assert model.is_free == relay.is_free == fail_safe
    if fail_safe:
        relay.lock()
        assert not model.is_free
    relay.free()
    assert model.is_free and relay.is_free
    relay.lock()
    assert not model.is_free and not relay.is_free
    relay.close()  # released: free on a fail-safe site, and no energised blip on the way
    assert model.is_free == fail_safe
    expected = ["relay_free", "relay_locked"]
    if fail_safe:
        expected = ["relay_locked", *expected, "relay_free"]
    assert model.events() == expected


def test_person_walks_through_after_the_relay_frees(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    relay = make_relay(factory, closing)
    inputs = GpioInputs(passage_pin=PASSAGE, fire_pin=FIRE, pin_factory=factory)
    closing.append(inputs.stop)
    events: queue.Queue = queue.Queue()
    inputs.start(events.put)
    fire = events.get(timeout=TIMEOUT)
    assert isinstance(fire, FireAlarmInput) and fire.open is False

    model.expect_walk(after_s=0.05)
    assert model.count("passage") == 0  # nobody moves while the turnstile is locked
    relay.free()
    assert model.wait_for("passage", timeout=TIMEOUT)
    sensed = events.get(timeout=TIMEOUT)
    assert isinstance(sensed, PassageSensed) and sensed.t >= model.relay_free_times[0]
    relay.lock()  # what the controller does on a passage
    passage = factory.sim_pin(PASSAGE)
    assert wait_until(lambda: lows(passage) == 1 and passage.state == 1)  # one pulse, over
    assert model.events() == ["relay_free", "passage", "relay_locked"]


def test_people_queue_one_per_unlock(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    relay = make_relay(factory, closing)
    model.expect_walk(after_s=0)
    model.expect_walk_away()
    model.expect_walk(after_s=0)
    relay.free()
    assert model.wait_for("passage", count=1, timeout=TIMEOUT)
    relay.lock()
    relay.free()
    assert model.wait_for("walk_away", timeout=TIMEOUT)
    relay.lock()
    relay.free()
    assert model.wait_for("passage", count=2, timeout=TIMEOUT)
    relay.lock()
    assert model.events() == [
        "relay_free",
        "passage",
        "relay_locked",
        "relay_free",
        "walk_away",
        "relay_locked",
        "relay_free",
        "passage",
        "relay_locked",
    ]
    assert len(model.relay_free_times) == 3
    passage = factory.sim_pin(PASSAGE)
    assert wait_until(lambda: lows(passage) == 2 and passage.state == 1)


def test_walk_away_gives_no_passage(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    relay = make_relay(factory, closing)
    model.expect_walk_away()
    relay.free()
    assert model.wait_for("walk_away", timeout=TIMEOUT)
    relay.lock()  # the unlock window ends
    model.close()  # no person thread is left that could still walk
    assert model.count("passage") == 0
    assert lows(factory.sim_pin(PASSAGE)) == 0


def test_person_too_late_is_blocked(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    relay = make_relay(factory, closing)
    model.expect_walk(after_s=60)
    relay.free()
    relay.lock()  # relocked before they arrive
    assert model.events() == ["relay_free", "relay_locked", "blocked"]
    model.close()
    assert lows(factory.sim_pin(PASSAGE)) == 0


def test_forced_passage_pulses_without_unlock(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    make_relay(factory, closing)
    events: queue.Queue = queue.Queue()
    inputs = GpioInputs(passage_pin=PASSAGE, pin_factory=factory)
    closing.append(inputs.stop)
    inputs.start(events.put)
    model.force_passage()
    assert isinstance(events.get(timeout=TIMEOUT), PassageSensed)
    passage = factory.sim_pin(PASSAGE)
    assert wait_until(lambda: lows(passage) == 1 and passage.state == 1)
    assert model.events() == ["forced"] and model.relay_free_times == []


def test_exit_passage_pulses_the_exit_sensor(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    events: queue.Queue = queue.Queue()
    inputs = GpioInputs(passage_pin=PASSAGE, exit_pin=EXIT, pin_factory=factory)
    closing.append(inputs.stop)
    inputs.start(events.put)
    model.exit_passage()
    model.exit_passage()  # two people: two separate pulses
    assert isinstance(events.get(timeout=TIMEOUT), ExitSensed)
    assert isinstance(events.get(timeout=TIMEOUT), ExitSensed)
    exit_ = factory.sim_pin(EXIT)
    assert wait_until(lambda: lows(exit_) == 2 and exit_.state == 1)
    assert model.events() == ["exit", "exit"]
    assert lows(factory.sim_pin(PASSAGE)) == 0


def test_fire_alarm_drives_the_contact(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    inputs = GpioInputs(passage_pin=PASSAGE, fire_pin=FIRE, pin_factory=factory)
    closing.append(inputs.stop)
    fire = factory.sim_pin(FIRE)
    assert fire.state == 0  # the pull-up did not open the simulated contact
    events: queue.Queue = queue.Queue()
    inputs.start(events.put)
    assert events.get(timeout=TIMEOUT).open is False
    model.fire_alarm(True)
    assert fire.state == 1
    assert events.get(timeout=TIMEOUT).open is True
    model.fire_alarm(False)
    assert fire.state == 0
    assert events.get(timeout=TIMEOUT).open is False
    assert model.events() == ["fire_open", "fire_closed"]


def test_kiosk_started_during_an_alarm_sees_it(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = make_model(factory, closing)
    model.fire_alarm(True)
    inputs = GpioInputs(passage_pin=PASSAGE, fire_pin=FIRE, pin_factory=factory)
    closing.append(inputs.stop)
    events: queue.Queue = queue.Queue()
    inputs.start(events.put)
    assert events.get(timeout=TIMEOUT).open is True


def test_model_without_optional_inputs(
    factory: SimPinFactory, closing: list[Callable[[], None]]
) -> None:
    model = TurnstileModel(factory, relay_pin=RELAY, passage_pin=PASSAGE)
    closing.append(model.close)
    with pytest.raises(ValueError, match="no fire-alarm input"):
        model.fire_alarm(True)
    with pytest.raises(ValueError, match="no exit sensor"):
        model.exit_passage()
    with pytest.raises(ValueError, match="unknown event"):
        model.wait_for("opened")
