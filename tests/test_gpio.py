"""The GPIO drivers on gpiozero's mock pins: assertions on pin timelines, never on durations."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero import DigitalInputDevice, OutputDevice
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from drivers.gpio import (
    AMBER_GREEN,
    DIM_LEVEL,
    SOUND_PATTERNS,
    BuzzerSounder,
    GpioBoard,
    GpioInputs,
    LightIndicator,
)
from kiosk.devices import Light, Sound
from kiosk.errors import DeviceError
from kiosk.gate.inputs import ExitSensed, FireAlarmInput, PassageSensed
from support import wait_until

RELAY, RED, GREEN, BLUE, BUZZER, PASSAGE, EXIT, FIRE = 17, 22, 27, 24, 18, 23, 5, 25
TIMEOUT = 15.0  # generous: a busy 2-core machine may stall a thread for seconds


def levels(pin: MockPin) -> list[float]:
    """The pin's timeline as levels (bools and PWM duty cycles alike)."""
    return [float(s.state) for s in pin.states]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """Mock pins without PWM (gpiozero's default mock)."""
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def pwm_factory() -> Iterator[MockFactory]:
    """Mock pins with PWM."""
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def closing() -> Iterator[list[Callable[[], None]]]:
    """Closers run at teardown (before the factory fixture resets its pins)."""
    closers: list[Callable[[], None]] = []
    yield closers
    for close in reversed(closers):
        close()


# -- light ------------------------------------------------------------------------------------

AMBER = (1.0, AMBER_GREEN, 0.0)
STEADY_RGB = {
    Light.OFF: (0.0, 0.0, 0.0),
    Light.IDLE: (0.0, DIM_LEVEL, 0.0),
    Light.ADMIT: (0.0, 1.0, 0.0),
    Light.DENY: (1.0, 0.0, 0.0),
    Light.REFER: AMBER,
}


def rgb_light(
    factory: MockFactory, closing: list[Callable[[], None]], idle_light: str = "dim"
) -> LightIndicator:
    light = LightIndicator(
        kind="rgb",
        red=RED,
        green=GREEN,
        blue_or_amber=BLUE,
        idle_light=idle_light,
        pin_factory=factory,
    )
    closing.append(light.close)
    return light


def rgb_levels(factory: MockFactory) -> tuple[float, ...]:
    return tuple(float(factory.pin(p).state) for p in (RED, GREEN, BLUE))


@pytest.mark.parametrize("light", list(STEADY_RGB))
def test_rgb_steady_lights(
    pwm_factory: MockFactory, closing: list[Callable[[], None]], light: Light
) -> None:
    indicator = rgb_light(pwm_factory, closing)
    assert indicator.pwm
    indicator.show(Light.EMERGENCY)  # a flashing state before must not linger
    indicator.show(light)
    assert rgb_levels(pwm_factory) == pytest.approx(STEADY_RGB[light])
    assert indicator.shown is light


def test_rgb_idle_off(pwm_factory: MockFactory, closing: list[Callable[[], None]]) -> None:
    indicator = rgb_light(pwm_factory, closing, idle_light="off")
    indicator.show(Light.ADMIT)
    indicator.show(Light.IDLE)
    assert rgb_levels(pwm_factory) == (0.0, 0.0, 0.0)


def test_rgb_without_pwm_falls_back_to_on_off(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    indicator = rgb_light(factory, closing)
    assert not indicator.pwm
    indicator.show(Light.IDLE)  # no dimming: off, never a full "admit" green
    assert rgb_levels(factory) == (0.0, 0.0, 0.0)
    indicator.show(Light.REFER)
    assert rgb_levels(factory) == (1.0, 1.0, 0.0)
    indicator.show(Light.EMERGENCY)
    assert wait_until(lambda: levels(factory.pin(RED)).count(1.0) >= 2)


def flashes(pin: MockPin, on: float, off: float, times: int) -> Callable[[], bool]:
    """True once the pin has gone ``on`` then ``off`` (and on again...) ``times`` times."""

    def seen() -> bool:
        lv = levels(pin)
        turns = [i for i in range(1, len(lv)) if lv[i] == on and lv[i - 1] == off]
        return len(turns) >= times and lv[-1] in (on, off)

    return seen


def test_rgb_emergency_flashes_amber(
    pwm_factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    indicator = rgb_light(pwm_factory, closing)
    indicator.show(Light.EMERGENCY)
    red, green, blue = (pwm_factory.pin(p) for p in (RED, GREEN, BLUE))
    assert wait_until(flashes(red, 1.0, 0.0, times=2))
    assert wait_until(flashes(green, AMBER_GREEN, 0.0, times=2))
    assert set(levels(blue)) == {0.0}
    indicator.show(Light.DENY)
    snapshot = levels(red)
    time.sleep(0.6)  # longer than a flash: a lingering blink thread would show here
    assert levels(red) == snapshot and rgb_levels(pwm_factory) == (1.0, 0.0, 0.0)


def test_rgb_locked_flashes_red(
    pwm_factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    indicator = rgb_light(pwm_factory, closing)
    indicator.show(Light.LOCKED)
    red, green = pwm_factory.pin(RED), pwm_factory.pin(GREEN)
    assert wait_until(lambda: levels(red)[-2:] == [1.0, 0.0])  # on, then off again
    assert set(levels(green)) == {0.0}


def test_rgb_offline_idle_blinks_amber_over_the_idle_light(
    pwm_factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    indicator = rgb_light(pwm_factory, closing)
    indicator.show(Light.IDLE_OFFLINE)
    green = pwm_factory.pin(GREEN)
    # Amber (half green), then back to the dim idle green.
    assert wait_until(lambda: levels(green)[-2:] == pytest.approx([AMBER_GREEN, DIM_LEVEL]))
    assert pwm_factory.pin(RED).state == 0


THREE = (RED, BLUE, GREEN)  # red, amber, green LEDs (amber on the "blue_or_amber" pin)
STEADY_THREE = {
    Light.OFF: (0.0, 0.0, 0.0),
    Light.IDLE: (0.0, 0.0, DIM_LEVEL),
    Light.ADMIT: (0.0, 0.0, 1.0),
    Light.DENY: (1.0, 0.0, 0.0),
    Light.REFER: (0.0, 1.0, 0.0),
}


def three_light(factory: MockFactory, closing: list[Callable[[], None]]) -> LightIndicator:
    light = LightIndicator(
        kind="three", red=RED, green=GREEN, blue_or_amber=BLUE, pin_factory=factory
    )
    closing.append(light.close)
    return light


def three_levels(factory: MockFactory) -> tuple[float, ...]:
    return tuple(float(factory.pin(p).state) for p in THREE)


@pytest.mark.parametrize("light", list(STEADY_THREE))
def test_three_leds_steady_lights(
    pwm_factory: MockFactory, closing: list[Callable[[], None]], light: Light
) -> None:
    indicator = three_light(pwm_factory, closing)
    indicator.show(Light.LOCKED)
    indicator.show(light)
    assert three_levels(pwm_factory) == pytest.approx(STEADY_THREE[light])


def test_three_leds_flashing(pwm_factory: MockFactory, closing: list[Callable[[], None]]) -> None:
    indicator = three_light(pwm_factory, closing)
    red, amber, green = (pwm_factory.pin(p) for p in THREE)
    indicator.show(Light.EMERGENCY)
    assert wait_until(flashes(amber, 1.0, 0.0, times=2))
    assert red.state == 0 and green.state == 0
    indicator.show(Light.LOCKED)
    assert amber.state == 0
    assert wait_until(lambda: levels(red)[-2:] == [1.0, 0.0])
    before = levels(amber).count(1.0)
    indicator.show(Light.IDLE_OFFLINE)
    assert red.state == 0 and green.state == pytest.approx(DIM_LEVEL)
    assert wait_until(lambda: levels(amber).count(1.0) > before and amber.state == 0)


def test_three_leds_without_pwm(factory: MockFactory, closing: list[Callable[[], None]]) -> None:
    indicator = three_light(factory, closing)
    indicator.show(Light.IDLE)
    assert three_levels(factory) == (0.0, 0.0, 0.0)
    indicator.show(Light.ADMIT)
    assert three_levels(factory) == (0.0, 0.0, 1.0)


def test_light_close_turns_off_and_frees_pins(pwm_factory: MockFactory) -> None:
    indicator = LightIndicator(red=RED, green=GREEN, blue_or_amber=BLUE, pin_factory=pwm_factory)
    indicator.show(Light.EMERGENCY)
    indicator.close()
    indicator.show(Light.ADMIT)  # a late call after close does nothing
    assert rgb_levels(pwm_factory) == (0.0, 0.0, 0.0)
    OutputDevice(RED, pin_factory=pwm_factory).close()


# -- buzzer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sound", "beeps"),
    [(Sound.SHORT, 1), (Sound.LONG, 1), (Sound.TWO_SHORT, 2), (Sound.ALARM, 15)],
)
def test_buzzer_patterns(
    factory: MockFactory, closing: list[Callable[[], None]], sound: Sound, beeps: int
) -> None:
    buzzer = BuzzerSounder(BUZZER, pin_factory=factory)
    closing.append(buzzer.close)
    pin = factory.pin(BUZZER)
    buzzer.play(sound)
    assert buzzer.wait_done(timeout=TIMEOUT)
    assert levels(pin).count(1.0) == beeps == SOUND_PATTERNS[sound][2]
    assert pin.state == 0


def test_buzzer_new_pattern_replaces_running_one(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    buzzer = BuzzerSounder(BUZZER, pin_factory=factory)
    closing.append(buzzer.close)
    pin = factory.pin(BUZZER)
    buzzer.play(Sound.ALARM)
    assert wait_until(lambda: levels(pin).count(1.0) >= 2)
    buzzer.play(Sound.NONE)
    assert pin.state == 0
    alarm_beeps = levels(pin).count(1.0)
    assert alarm_beeps < SOUND_PATTERNS[Sound.ALARM][2]
    buzzer.play(Sound.SHORT)
    assert buzzer.wait_done(timeout=TIMEOUT)
    assert levels(pin).count(1.0) == alarm_beeps + 1 and pin.state == 0


def test_buzzer_close_silences(factory: MockFactory) -> None:
    buzzer = BuzzerSounder(BUZZER, pin_factory=factory)
    buzzer.play(Sound.ALARM)
    buzzer.close()
    assert factory.pin(BUZZER).state == 0
    buzzer.play(Sound.SHORT)  # a late call after close does nothing
    assert factory.pin(BUZZER).state == 0


# -- inputs -----------------------------------------------------------------------------------


def started_inputs(
    factory: MockFactory,
    closing: list[Callable[[], None]],
    *,
    fire_closed: bool = True,
    **pins: int,
) -> tuple[GpioInputs, queue.Queue]:
    inputs = GpioInputs(pin_factory=factory, **pins)
    closing.append(inputs.stop)
    if fire_closed and pins.get("fire_pin", -1) >= 0:
        factory.pin(pins["fire_pin"]).drive_low()  # the contact to ground is closed
    events: queue.Queue = queue.Queue()
    inputs.start(events.put)
    return inputs, events


def test_sensors_emit_on_activation(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    inputs, events = started_inputs(factory, closing, passage_pin=PASSAGE, exit_pin=EXIT)
    assert inputs.name == "gpio"
    passage, exit_ = factory.pin(PASSAGE), factory.pin(EXIT)
    assert passage.state == 1 and exit_.state == 1  # pull-ups: idle high
    before = time.monotonic()
    passage.drive_low()
    event = events.get(timeout=TIMEOUT)
    assert isinstance(event, PassageSensed) and event.t >= before
    passage.drive_high()  # the beam whole again is not an event
    exit_.drive_low()
    assert isinstance(events.get(timeout=TIMEOUT), ExitSensed)
    exit_.drive_high()
    passage.drive_low()
    assert isinstance(events.get(timeout=TIMEOUT), PassageSensed)
    assert events.empty()


def test_fire_alarm_level_at_start_and_every_change(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    _, events = started_inputs(factory, closing, passage_pin=PASSAGE, fire_pin=FIRE)
    event = events.get(timeout=TIMEOUT)
    assert isinstance(event, FireAlarmInput) and event.open is False
    fire = factory.pin(FIRE)
    fire.drive_high()  # contact opens: alarm
    assert events.get(timeout=TIMEOUT).open is True
    fire.drive_low()
    assert events.get(timeout=TIMEOUT).open is False
    assert events.empty()


def test_fire_alarm_open_at_start_is_reported_at_once(
    factory: MockFactory, closing: list[Callable[[], None]]
) -> None:
    # A cut wire or an alarm already on: the pull-up holds the pin high.
    _, events = started_inputs(
        factory, closing, fire_closed=False, passage_pin=PASSAGE, fire_pin=FIRE
    )
    event = events.get(timeout=TIMEOUT)
    assert isinstance(event, FireAlarmInput) and event.open is True


def test_inputs_stop_silences_and_frees_pins(factory: MockFactory) -> None:
    inputs = GpioInputs(passage_pin=PASSAGE, fire_pin=FIRE, pin_factory=factory)
    events: list[object] = []
    inputs.start(events.append)
    inputs.stop()
    inputs.stop()
    count = len(events)
    factory.pin(PASSAGE).drive_low()
    factory.pin(FIRE).drive_low()
    assert len(events) == count
    DigitalInputDevice(PASSAGE, pin_factory=factory).close()


def test_inputs_bad_pin_frees_the_others(factory: MockFactory) -> None:
    with pytest.raises(DeviceError, match="fire-alarm input on GPIO99"):
        GpioInputs(passage_pin=PASSAGE, fire_pin=99, pin_factory=factory)
    DigitalInputDevice(PASSAGE, pin_factory=factory).close()


# -- board ------------------------------------------------------------------------------------


def test_board_from_config_builds_the_relay_first(pwm_factory: MockFactory) -> None:
    board = GpioBoard.from_config({"exit_sensor": EXIT}, {}, pin_factory=pwm_factory)
    try:
        # MockFactory keeps pins in creation order: the relay's pin came first.
        first = next(iter(pwm_factory.pins.values()))
        assert first is pwm_factory.pin(RELAY)
        assert levels(first) == [0.0]
        assert board.indicator.pwm
        board.indicator.show(Light.IDLE)
        assert pwm_factory.pin(GREEN).state == pytest.approx(DIM_LEVEL)
        events: queue.Queue = queue.Queue()
        pwm_factory.pin(FIRE).drive_low()
        board.inputs.start(events.put)
        assert events.get(timeout=TIMEOUT).open is False
    finally:
        board.close()


def test_board_close_releases_the_relay_first(pwm_factory: MockFactory) -> None:
    board = GpioBoard.from_config(
        {"led_kind": "three", "led_amber": 6}, {"idle_light": "off"}, pin_factory=pwm_factory
    )
    relay_pin = pwm_factory.pin(RELAY)
    seen: list[float] = []
    close_light = board.indicator.close

    def close_and_look() -> None:
        seen.append(float(relay_pin.state))
        close_light()

    board.indicator.close = close_and_look  # type: ignore[method-assign]
    board.turnstile.free()
    board.close()
    assert seen == [0.0] and relay_pin.state == 0


def test_board_failure_closes_what_was_built(pwm_factory: MockFactory) -> None:
    with pytest.raises(DeviceError, match="buzzer on GPIO17"):
        GpioBoard.from_config({"buzzer": RELAY}, {}, pin_factory=pwm_factory)
    assert pwm_factory.pin(RELAY).state == 0
    for pin in (RELAY, RED, GREEN, BLUE):
        OutputDevice(pin, pin_factory=pwm_factory).close()
