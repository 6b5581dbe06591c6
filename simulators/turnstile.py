"""The simulated turnstile and the people at it, on gpiozero's mock pins.

The kiosk's own GPIO drivers (``drivers/gpio.py``) run unchanged on a ``SimPinFactory``;
``TurnstileModel`` sits on the other side of the same pins: it watches the relay pin and
drives the sensor pins the way the turnstile's beam and the fire panel's contact would.
Tests and benchmarks read its ``timeline``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gpiozero.exc import PinFixedPull, PinInvalidPull
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from kiosk.config.sections import GateSection, GpioSection

PinListener = Callable[["SimPin"], None]

PULSE_S = 0.2
"""How long a person keeps the passage or exit beam broken."""
GAP_S = 0.05
"""Least time a beam stays whole between two people, so every passage is its own edge."""

EVENTS = (
    "relay_free",
    "relay_locked",
    "passage",
    "walk_away",
    "blocked",
    "forced",
    "exit",
    "fire_open",
    "fire_closed",
)
"""What ``TurnstileModel.timeline`` records."""


class SimPin(MockPWMPin):
    """A mock pin (with PWM) that tells listeners when its level changes.

    The outside world can hold an input at a level (``drive``): a beam sensor's output or a
    fire panel's contact to ground is stronger than the Pi's weak pull-up, so configuring a
    pull on a held pin does not move it (a plain ``MockPin`` jumps to the pull's level).
    """

    def __init__(self, factory: MockFactory, info: object) -> None:
        # Set before the base constructor, which may already change the state.
        self._listeners: list[PinListener] = []
        self._held: bool | None = None
        super().__init__(factory, info)

    def add_listener(self, listener: PinListener) -> None:
        """Call ``listener(pin)`` in the changing thread after every change of level.

        A change of function alone is not reported: gpiozero makes a pin an output and then
        sets its level, and the instant in between is not a level the mock ever records.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: PinListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def drive(self, level: bool) -> None:
        """Hold this input high or low from outside (fires gpiozero's edge callbacks)."""
        self._held = level
        if level:
            super().drive_high()
        else:
            super().drive_low()

    def let_go(self) -> None:
        """Stop holding the input; it returns to its pull's level."""
        self._held = None
        if self.function == "input":
            self._set_pull(self._get_pull())

    def close(self) -> None:
        """Give the pin back to input, leaving the level alone unless PWM was running."""
        if self._frequency is None:
            # MockPWMPin.close always drops the level to 0 while still an output: an active-
            # low relay would look energised for an instant. A real pin just goes to input.
            MockPin.close(self)
        else:
            super().close()

    def _change_state(self, value: float) -> bool:
        changed = super()._change_state(value)
        if changed:
            self._notify()
        return changed

    def _set_pull(self, value: str) -> None:
        if self._held is None:
            super()._set_pull(value)
            return
        # Same checks as MockPin, but the held level wins over the pull resistor.
        if self.function != "input":
            raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
        if self.info.pull and value != self.info.pull:
            raise PinFixedPull(f"{self!r} has a fixed pull resistor")
        if value not in ("floating", "up", "down"):
            raise PinInvalidPull("pull must be floating, up, or down")
        self._pull = value

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self)


class SimPinFactory(MockFactory):
    """A gpiozero ``MockFactory`` whose pins are ``SimPin`` (PWM-capable, with listeners)."""

    def __init__(self, revision: str | None = None) -> None:
        super().__init__(revision=revision, pin_class=SimPin)

    def sim_pin(self, number: int) -> SimPin:
        """The ``SimPin`` for a BCM GPIO number (the same object gpiozero devices use)."""
        pin = self.pin(number)
        assert isinstance(pin, SimPin)
        return pin


@dataclass
class _Walk:
    """A person who will walk through ``after_s`` after the turnstile frees."""

    after_s: float
    timer: threading.Timer | None = None
    done: bool = False


class TurnstileModel:
    """The turnstile, its sensors, the fire panel and a queue of people, on mock pins.

    At creation the passage and exit beams are whole (inputs held high) and the fire contact
    is closed (held low). Whether the turnstile is free follows the relay pin the instant it
    changes: energised = the pin is an output at its active level; free = energised on a
    fail-secure site, released on a fail-safe one. Each time the turnstile becomes free the
    next person in the queue acts: walks through after a delay, or walks away. A person
    still approaching when the turnstile relocks is recorded ``blocked`` and does not pass.

    Make the model before the kiosk's devices on the same factory, and ``close`` it before
    ``factory.reset()`` (a reset forgets the pins the model watches).
    """

    def __init__(
        self,
        factory: SimPinFactory,
        *,
        relay_pin: int,
        passage_pin: int,
        exit_pin: int = -1,
        fire_pin: int = -1,
        relay_active_high: bool = True,
        fail_safe: bool = False,
    ) -> None:
        self._cond = threading.Condition()
        self._active_high = relay_active_high
        self._fail_safe = fail_safe
        self._people: deque[_Walk | None] = deque()  # None: walks away
        self._walking: _Walk | None = None
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self.timeline: list[tuple[float, str]] = []
        """(time.monotonic(), event) for every event in ``EVENTS``, in order."""
        self._relay_free_times: list[float] = []

        self._relay = factory.sim_pin(relay_pin)
        self._passage = factory.sim_pin(passage_pin)
        self._exit = factory.sim_pin(exit_pin) if exit_pin >= 0 else None
        self._fire = factory.sim_pin(fire_pin) if fire_pin >= 0 else None
        # One beam, one person at a time: pulses on a pin never overlap.
        self._beam_locks = {id(self._passage): threading.Lock()}
        if self._exit is not None:
            self._beam_locks[id(self._exit)] = threading.Lock()
        self._passage.drive(True)
        if self._exit is not None:
            self._exit.drive(True)
        if self._fire is not None:
            self._fire.drive(False)
        self._free = self._relay_says_free()
        self._relay.add_listener(self._on_relay)

    @classmethod
    def for_config(
        cls, factory: SimPinFactory, gpio: GpioSection, gate: GateSection
    ) -> TurnstileModel:
        """The turnstile wired as a kiosk's ``[gpio]`` and ``[gate]`` sections say."""
        return cls(
            factory,
            relay_pin=gpio.relay,
            passage_pin=gpio.passage_sensor,
            exit_pin=gpio.exit_sensor,
            fire_pin=gpio.fire_alarm,
            relay_active_high=gpio.relay_active_high,
            fail_safe=gate.fail_safe,
        )

    # -- what the tests and benchmarks read -------------------------------------------------

    @property
    def is_free(self) -> bool:
        """Whether the turnstile is free now (from the relay pin)."""
        with self._cond:
            return self._free

    @property
    def relay_free_times(self) -> list[float]:
        """The ``time.monotonic()`` of every change of the relay to free."""
        with self._cond:
            return list(self._relay_free_times)

    def events(self) -> list[str]:
        """The timeline's events without times."""
        with self._cond:
            return [event for _, event in self.timeline]

    def count(self, event: str) -> int:
        """How often ``event`` happened."""
        with self._cond:
            return sum(1 for _, e in self.timeline if e == event)

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``event`` has happened ``count`` times; False on timeout."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; one of {', '.join(EVENTS)}")
        with self._cond:
            return self._cond.wait_for(lambda: self._count(event) >= count, timeout)

    # -- the people -------------------------------------------------------------------------

    def expect_walk(self, after_s: float) -> None:
        """The next admitted person walks through ``after_s`` after the turnstile frees."""
        with self._cond:
            self._people.append(_Walk(after_s=max(0.0, after_s)))

    def expect_walk_away(self) -> None:
        """The next admitted person does not pass."""
        with self._cond:
            self._people.append(None)

    def forget_people(self) -> None:
        """Nobody is waiting any more (the person in front was denied and turned round)."""
        with self._cond:
            self._people.clear()

    def force_passage(self) -> None:
        """Someone jumps the turnstile now: a passage pulse with no unlock."""
        self._record("forced")
        self._in_thread(self._pulse, self._passage)

    def exit_passage(self) -> None:
        """Someone leaves through the exit sensor now."""
        if self._exit is None:
            raise ValueError("this turnstile has no exit sensor")
        self._record("exit")
        self._in_thread(self._pulse, self._exit)

    def fire_alarm(self, on: bool) -> None:
        """Open (alarm, ``on``) or close the fire panel's contact; immediate."""
        if self._fire is None:
            raise ValueError("this turnstile has no fire-alarm input")
        self._record("fire_open" if on else "fire_closed")
        self._fire.drive(on)  # open contact: the pull-up takes the pin high

    def close(self) -> None:
        """Stop the people's timers and threads and stop watching the relay."""
        with self._cond:
            self._closed = True
            walking, self._walking = self._walking, None
            threads = list(self._threads)
        if walking is not None and walking.timer is not None:
            walking.timer.cancel()
        self._relay.remove_listener(self._on_relay)
        for thread in threads:
            thread.join(timeout=10)

    # -- inside -----------------------------------------------------------------------------

    def _relay_says_free(self) -> bool:
        # An input (nobody drives it yet, or the kiosk let go) leaves the relay released.
        pin = self._relay
        energised = pin.function == "output" and (pin.state >= 0.5) == self._active_high
        return energised != self._fail_safe

    def _on_relay(self, pin: SimPin) -> None:
        """Runs in whichever thread changed the relay pin: record and start people only."""
        with self._cond:
            if self._closed:
                return
            free = self._relay_says_free()
            if free == self._free:
                return
            self._free = free
            now = time.monotonic()
            if free:
                self._relay_free_times.append(now)
                self._append(now, "relay_free")
                self._next_person(now)
            else:
                self._append(now, "relay_locked")
                walking, self._walking = self._walking, None
                if walking is not None and not walking.done:
                    # Still approaching when the arm locked: bumps into it, no passage.
                    walking.done = True
                    if walking.timer is not None:
                        walking.timer.cancel()
                        self._threads.discard(walking.timer)
                    self._append(now, "blocked")

    def _next_person(self, now: float) -> None:
        if not self._people:
            return
        person = self._people.popleft()
        if person is None:
            self._append(now, "walk_away")
            return
        self._walking = person
        timer = threading.Timer(person.after_s, self._walk, args=(person,))
        timer.daemon = True
        person.timer = timer
        self._threads.add(timer)
        timer.start()

    def _walk(self, person: _Walk) -> None:
        try:
            with self._cond:
                if person.done or self._closed or not self._free:
                    return
                person.done = True
                if self._walking is person:
                    self._walking = None
                self._append(time.monotonic(), "passage")
            self._pulse(self._passage)
        finally:
            with self._cond:
                self._threads.discard(threading.current_thread())

    def _pulse(self, pin: SimPin) -> None:
        """Break the beam for ``PULSE_S`` (pin low), then make it whole again."""
        with self._beam_locks[id(pin)]:
            pin.drive(False)
            time.sleep(PULSE_S)
            pin.drive(True)
            time.sleep(GAP_S)

    def _in_thread(self, target: Callable[..., None], *args: object) -> None:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._cond:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, daemon=True, name="sim-person")
        with self._cond:
            self._threads.add(thread)
        thread.start()

    def _record(self, event: str) -> None:
        with self._cond:
            self._append(time.monotonic(), event)

    def _append(self, t: float, event: str) -> None:
        # Caller holds self._cond.
        self.timeline.append((t, event))
        self._cond.notify_all()

    def _count(self, event: str) -> int:
        return sum(1 for _, e in self.timeline if e == event)
