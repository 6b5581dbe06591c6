"""Everything on the kiosk's GPIO pins, through gpiozero only.

The light (one RGB LED or three LEDs), the buzzer, the inputs (passage sensor, optional exit
sensor, fire-alarm contact), and the board that builds them all after the relay that frees
the turnstile (``drivers/relay.py``). The gate controller talks to these through the
protocols of ``kiosk.devices``; the pin factory (``drivers/pins.py``) decides whether the
pins are real (lgpio, RPi.GPIO) or gpiozero's mock pins (tests, simulation).

Library errors become ``DeviceError`` at the boundary (DEVELOPERS.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gpiozero import LED, PWMLED, RGBLED, Buzzer, DigitalInputDevice
from gpiozero.exc import PinPWMUnsupported
from gpiozero.pins import Factory

# The pin factories and the relay have modules of their own; their names stay importable
# from here, where the rest of the kiosk has always found them.
from drivers.pins import _device_errors, make_pin_factory
from drivers.relay import RelayTurnstile
from kiosk.config.schema import SECTIONS
from kiosk.devices import Light, Sound
from kiosk.errors import DeviceError
from kiosk.gate.inputs import Emit, ExitSensed, FireAlarmInput, PassageSensed

__all__ = [
    "BuzzerSounder",
    "GpioBoard",
    "GpioInputs",
    "LightIndicator",
    "RelayTurnstile",
    "make_pin_factory",
]

# Light levels and timings (gate.md, Indicators).
DIM_LEVEL = 0.15
"""Brightness of the dim idle light on a PWM pin."""
AMBER_GREEN = 0.5
"""Green share of amber on an RGB LED (amber = red + half green)."""
EMERGENCY_FLASH_S = 0.25
"""On and off time of the emergency amber flash (2 Hz)."""
LOCKED_FLASH_S = 1.0
"""On and off time of the lockdown/closed red flash (0.5 Hz)."""
OFFLINE_BLINK_S = 0.2
"""How long the amber "no status service" blink lasts."""
OFFLINE_PERIOD_S = 3.0
"""How often the amber "no status service" blink comes."""

SOUND_PATTERNS: dict[Sound, tuple[float, float, int]] = {
    Sound.SHORT: (0.1, 0.1, 1),
    Sound.LONG: (0.8, 0.1, 1),
    Sound.TWO_SHORT: (0.1, 0.1, 2),
    Sound.ALARM: (0.1, 0.1, 15),  # fast beeps for about 3 s
}
"""Buzzer patterns as (on_time_s, off_time_s, beeps)."""


def _led(pin: int, pin_factory: Factory | None) -> PWMLED | LED:
    """A PWM LED where the pin can do PWM (for the dim idle light), else an on/off LED."""
    try:
        return PWMLED(pin, pin_factory=pin_factory)
    except PinPWMUnsupported:
        # PWMLED closes itself when the pin refuses a frequency, so the pin is free again.
        return LED(pin, pin_factory=pin_factory)


def _rgb(red: int, green: int, blue: int, pin_factory: Factory | None) -> tuple[RGBLED, bool]:
    """An RGB LED with PWM where the pins can do it, else on/off; and whether it has PWM."""
    try:
        return RGBLED(red, green, blue, pwm=True, pin_factory=pin_factory), True
    except PinPWMUnsupported:
        # The red PWMLED closed itself on refusal, so its pin is free for the on/off LED.
        return RGBLED(red, green, blue, pwm=False, pin_factory=pin_factory), False


class LightIndicator:
    """The kiosk's light (``kiosk.devices.Indicator``): one RGB LED or three LEDs.

    ``kind="rgb"``: ``red``, ``green`` and ``blue_or_amber`` (blue) are the RGB LED's pins;
    amber is red plus half green. ``kind="three"``: separate red, amber (``blue_or_amber``)
    and green LEDs. ``idle_light`` is ``dim`` (dim green) or ``off``. Dimming needs PWM; on
    pins without PWM the idle light is off rather than full green, so that idle never looks
    like "admit", and amber on an RGB LED is red plus full green.
    """

    def __init__(
        self,
        *,
        kind: str = "rgb",
        red: int,
        green: int,
        blue_or_amber: int,
        idle_light: str = "dim",
        pin_factory: Factory | None = None,
    ) -> None:
        if kind not in ("rgb", "three"):
            raise DeviceError(f"LED kind must be 'rgb' or 'three', not {kind!r}")
        if idle_light not in ("dim", "off"):
            raise DeviceError(f"idle light must be 'dim' or 'off', not {idle_light!r}")
        self._kind = kind
        self._idle_light = idle_light
        self._lock = threading.Lock()
        self._closed = False
        self._rgb: RGBLED | None = None
        self._pwm = False
        self._leds: dict[str, PWMLED | LED] = {}
        self._what = f"{kind} light on GPIO{red}/{green}/{blue_or_amber}"
        with _device_errors(self._what):
            if kind == "rgb":
                self._rgb, self._pwm = _rgb(red, green, blue_or_amber, pin_factory)
            else:
                try:
                    for colour, pin in (("red", red), ("amber", blue_or_amber), ("green", green)):
                        self._leds[colour] = _led(pin, pin_factory)
                except BaseException:
                    self._close_devices()
                    raise
                self._pwm = isinstance(self._leds["green"], PWMLED)
        self.shown: Light = Light.OFF
        """The state shown last."""

    @property
    def pwm(self) -> bool:
        """Whether the green light can be dimmed (its pin does PWM)."""
        return self._pwm

    def show(self, light: Light) -> None:
        """Show this state until told otherwise; flashing runs in gpiozero's threads.

        Does nothing once closed (a late call during shutdown must not fail).
        """
        with self._lock:
            if self._closed:
                return
            with _device_errors(self._what):
                if self._rgb is not None:
                    self._show_rgb(self._rgb, light)
                else:
                    self._show_three(light)
            self.shown = light

    def close(self) -> None:
        """Turn the light off and give the pins back."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_devices()

    def _close_devices(self) -> None:
        devices: list[Any] = [self._rgb] if self._rgb is not None else list(self._leds.values())
        for device in devices:
            # gpiozero stops the blink thread on close; turning off first leaves the LED dark.
            try:
                device.off()
            finally:
                device.close()

    def _idle_level(self, pwm: bool) -> float:
        return DIM_LEVEL if self._idle_light == "dim" and pwm else 0.0

    def _show_rgb(self, rgb: RGBLED, light: Light) -> None:
        pwm = self._pwm
        amber = (1.0, AMBER_GREEN if pwm else 1.0, 0.0)
        red = (1.0, 0.0, 0.0)
        idle = (0.0, self._idle_level(pwm), 0.0)
        steady = {
            Light.OFF: (0.0, 0.0, 0.0),
            Light.IDLE: idle,
            Light.ADMIT: (0.0, 1.0, 0.0),
            Light.DENY: red,
            Light.REFER: amber,
        }
        if light in steady:
            # Setting the value stops any blink thread first (gpiozero joins it).
            rgb.value = steady[light]
        elif light is Light.EMERGENCY:
            rgb.blink(EMERGENCY_FLASH_S, EMERGENCY_FLASH_S, on_color=amber, off_color=(0, 0, 0))
        elif light is Light.LOCKED:
            rgb.blink(LOCKED_FLASH_S, LOCKED_FLASH_S, on_color=red, off_color=(0, 0, 0))
        elif light is Light.IDLE_OFFLINE:
            rgb.blink(
                OFFLINE_BLINK_S,
                OFFLINE_PERIOD_S - OFFLINE_BLINK_S,
                on_color=amber,
                off_color=idle,
            )
        else:  # pragma: no cover - Light is closed
            raise DeviceError(f"unknown light {light!r}")

    def _show_three(self, light: Light) -> None:
        red, amber, green = self._leds["red"], self._leds["amber"], self._leds["green"]
        idle = self._idle_level(self._pwm)
        levels = {
            Light.OFF: (0.0, 0.0, 0.0),
            Light.IDLE: (0.0, 0.0, idle),
            Light.ADMIT: (0.0, 0.0, 1.0),
            Light.DENY: (1.0, 0.0, 0.0),
            Light.REFER: (0.0, 1.0, 0.0),
            Light.EMERGENCY: (0.0, 0.0, 0.0),
            Light.LOCKED: (0.0, 0.0, 0.0),
            Light.IDLE_OFFLINE: (0.0, 0.0, idle),
        }[light]
        for led, level in zip((red, amber, green), levels, strict=True):
            # Assigning a value stops that LED's blink thread; on/off LEDs take 0 or 1 only.
            led.value = level if isinstance(led, PWMLED) else int(level >= 0.5)
        if light is Light.EMERGENCY:
            amber.blink(EMERGENCY_FLASH_S, EMERGENCY_FLASH_S)
        elif light is Light.LOCKED:
            red.blink(LOCKED_FLASH_S, LOCKED_FLASH_S)
        elif light is Light.IDLE_OFFLINE:
            amber.blink(OFFLINE_BLINK_S, OFFLINE_PERIOD_S - OFFLINE_BLINK_S)


class BuzzerSounder:
    """The buzzer (``kiosk.devices.Sounder``); patterns run in gpiozero's background thread.

    A new pattern replaces a running one; ``Sound.NONE`` silences it.
    """

    def __init__(self, pin: int, *, pin_factory: Factory | None = None) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._what = f"buzzer on GPIO{pin}"
        with _device_errors(self._what):
            self._buzzer = Buzzer(pin, initial_value=False, pin_factory=pin_factory)

    def play(self, sound: Sound) -> None:
        """Start this pattern at once (any running one stops). Does nothing once closed."""
        with self._lock:
            if self._closed:
                return
            with _device_errors(self._what):
                if sound is Sound.NONE:
                    self._buzzer.off()
                    return
                on_s, off_s, beeps = SOUND_PATTERNS[sound]
                # beep() stops a running pattern (joining its thread) before starting this one.
                self._buzzer.beep(on_time=on_s, off_time=off_s, n=beeps, background=True)

    def wait_done(self, timeout: float) -> bool:
        """Wait until the current pattern has ended; False on timeout (for tests, shutdown)."""
        # gpiozero keeps the pattern's thread in a private attribute (2.0); no public way.
        thread = getattr(self._buzzer, "_blink_thread", None)
        if thread is None:
            return True
        thread_join = threading.Thread.join  # gpiozero's join raises on timeout; avoid it
        thread_join(thread, timeout)
        return not thread.is_alive()

    def close(self) -> None:
        """Silence the buzzer and give the pin back."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._buzzer.off()
            finally:
                self._buzzer.close()


class GpioInputs:
    """The passage sensor, optional exit sensor and fire-alarm contact (``InputDevice``).

    Sensors are active low with the pin's pull-up (a beam break or relay contact pulls the
    pin to ground) and emit ``PassageSensed``/``ExitSensed`` when activated. The fire alarm
    is a normally-closed contact to ground: closed = low = normal; open circuit (alarm or a
    cut wire) = high = alarm. Every change emits ``FireAlarmInput`` and ``start`` emits the
    current level once, so a kiosk started during an alarm goes into emergency at once.
    Pin numbers of -1 mean "not fitted". Callbacks run in gpiozero's threads and only emit.
    The devices are claimed when this object is made (so a wrong pin fails early); after
    ``stop`` it cannot be started again.
    """

    name = "gpio"

    def __init__(
        self,
        *,
        passage_pin: int,
        exit_pin: int = -1,
        fire_pin: int = -1,
        pin_factory: Factory | None = None,
        bounce_s: float = 0.02,
    ) -> None:
        self._factory = pin_factory
        self._bounce = bounce_s if bounce_s > 0 else None
        self._emit: Emit | None = None
        # Orders the start-up reading of the fire input against edge callbacks, so the last
        # FireAlarmInput emitted always matches the pin.
        self._fire_lock = threading.Lock()
        self._devices: list[DigitalInputDevice] = []
        try:
            self._passage = self._input(passage_pin, "passage sensor")
            self._exit = self._input(exit_pin, "exit sensor") if exit_pin >= 0 else None
            self._fire = self._input(fire_pin, "fire-alarm input") if fire_pin >= 0 else None
        except BaseException:
            self.stop()
            raise

    def _input(self, pin: int, what: str) -> DigitalInputDevice:
        with _device_errors(f"{what} on GPIO{pin}"):
            device = DigitalInputDevice(
                pin, pull_up=True, bounce_time=self._bounce, pin_factory=self._factory
            )
        self._devices.append(device)
        return device

    def start(self, emit: Emit) -> None:
        """Begin emitting events; emits the fire-alarm level once at once."""
        self._emit = emit
        self._passage.when_activated = self._on_passage
        if self._exit is not None:
            self._exit.when_activated = self._on_exit
        if self._fire is not None:
            self._fire.when_activated = self._on_fire_closed
            self._fire.when_deactivated = self._on_fire_open
            with self._fire_lock:
                # Callbacks are attached first: an edge from now on is emitted after this.
                self._send(FireAlarmInput(open=not self._fire.is_active, t=time.monotonic()))

    def stop(self) -> None:
        """Stop emitting and give the pins back. Safe to call more than once."""
        self._emit = None
        devices, self._devices = self._devices, []
        for device in devices:
            # Closing detaches the callbacks (setting them to None makes gpiozero warn).
            device.close()

    def _send(self, event: Any) -> None:
        emit = self._emit
        if emit is not None:
            emit(event)

    def _on_passage(self) -> None:
        self._send(PassageSensed(t=time.monotonic()))

    def _on_exit(self) -> None:
        self._send(ExitSensed(t=time.monotonic()))

    def _on_fire_closed(self) -> None:
        with self._fire_lock:
            self._send(FireAlarmInput(open=False, t=time.monotonic()))

    def _on_fire_open(self) -> None:
        with self._fire_lock:
            self._send(FireAlarmInput(open=True, t=time.monotonic()))


def _key(section: str, values: Mapping[str, Any], key: str) -> Any:
    """A configuration value, or the schema's default when the mapping lacks it."""
    return values.get(key, SECTIONS[section][key].default)


class GpioBoard:
    """All GPIO devices of a kiosk on one pin factory; the relay is always built first."""

    def __init__(
        self,
        *,
        turnstile: RelayTurnstile,
        indicator: LightIndicator,
        sounder: BuzzerSounder,
        inputs: GpioInputs,
    ) -> None:
        self.turnstile = turnstile
        self.indicator = indicator
        self.sounder = sounder
        self.inputs = inputs

    @classmethod
    def from_config(
        cls, gpio: Mapping[str, Any], gate: Mapping[str, Any], *, pin_factory: Factory | None
    ) -> GpioBoard:
        """Build from the ``[gpio]`` and ``[gate]`` sections (missing keys take defaults).

        The relay comes first so that it is released before anything else can fail; if a
        later device fails, everything built so far is closed and ``DeviceError`` raised.
        """
        turnstile = RelayTurnstile(
            _key("gpio", gpio, "relay"),
            active_high=_key("gpio", gpio, "relay_active_high"),
            fail_safe=_key("gate", gate, "fail_safe"),
            pin_factory=pin_factory,
        )
        built: list[Callable[[], None]] = [turnstile.close]
        try:
            kind = _key("gpio", gpio, "led_kind")
            indicator = LightIndicator(
                kind=kind,
                red=_key("gpio", gpio, "led_red"),
                green=_key("gpio", gpio, "led_green"),
                blue_or_amber=_key("gpio", gpio, "led_blue" if kind == "rgb" else "led_amber"),
                idle_light=_key("gate", gate, "idle_light"),
                pin_factory=pin_factory,
            )
            built.append(indicator.close)
            sounder = BuzzerSounder(_key("gpio", gpio, "buzzer"), pin_factory=pin_factory)
            built.append(sounder.close)
            inputs = GpioInputs(
                passage_pin=_key("gpio", gpio, "passage_sensor"),
                exit_pin=_key("gpio", gpio, "exit_sensor"),
                fire_pin=_key("gpio", gpio, "fire_alarm"),
                pin_factory=pin_factory,
            )
        except BaseException:
            _close_all(built)
            raise
        return cls(turnstile=turnstile, indicator=indicator, sounder=sounder, inputs=inputs)

    def close(self) -> None:
        """Release the relay first, then stop the inputs and close the light and buzzer."""
        _close_all(
            [self.turnstile.close, self.inputs.stop, self.indicator.close, self.sounder.close]
        )


def _close_all(closers: list[Callable[[], None]]) -> None:
    """Run every closer even if some fail; re-raise the first failure afterwards."""
    first: BaseException | None = None
    for close in closers:
        try:
            close()
        except Exception as exc:  # noqa: BLE001 - each device must get its chance
            first = first or exc
    if first is not None:
        raise first
