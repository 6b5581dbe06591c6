"""The interfaces between the gate controller and the hardware drivers.

The controller says *what* (free the turnstile, show "deny", sound "two short"); drivers say
*how* on their pins. Simulators and tests implement the same interfaces at the pin level.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from kiosk.gate.inputs import Emit


class Light(StrEnum):
    """What the indicator shows (gate.md, Indicators)."""

    OFF = "off"
    IDLE = "idle"  # dim green or off, per configuration
    IDLE_OFFLINE = "idle_offline"  # idle light that blinks amber once every few seconds
    ADMIT = "admit"  # green
    DENY = "deny"  # red
    REFER = "refer"  # amber
    EMERGENCY = "emergency"  # amber flashing
    LOCKED = "locked"  # red, slow flash (lockdown, closed)


class Sound(StrEnum):
    """What the buzzer plays."""

    NONE = "none"
    SHORT = "short"  # admit
    LONG = "long"  # deny
    TWO_SHORT = "two_short"  # refer
    ALARM = "alarm"  # forced passage


class Turnstile(Protocol):
    """The release relay. ``release`` de-energises it: the state of start, stop and crash."""

    def release(self) -> None:
        """De-energise the relay (safe state: locked on fail-secure sites)."""
        ...

    def free(self, hold_s: float = 5.0) -> None:
        """Let one person through (an admission or `open_once`) for at most ``hold_s``.

        ``hold_s`` is the unlock window. The driver ends the unlock by itself a little after
        it if ``lock`` has not come by then (gate.md, Safety: defence in depth), so a
        controller that stops answering cannot leave the turnstile free. Without an
        argument the hold is the default window, never unbounded.
        """
        ...

    def hold_free(self) -> None:
        """Keep the turnstile free until ``lock`` or ``release``: emergency mode only."""
        ...

    def lock(self) -> None:
        """Keep people out."""
        ...

    @property
    def is_free(self) -> bool:
        """Whether the turnstile is currently free."""
        ...


class Indicator(Protocol):
    """The light (RGB LED or three LEDs)."""

    def show(self, light: Light) -> None:
        """Show this state until told otherwise."""
        ...


class Sounder(Protocol):
    """The buzzer."""

    def play(self, sound: Sound) -> None:
        """Play this pattern once (it runs in the background)."""
        ...


class InputDevice(Protocol):
    """A device that produces events: camera, scanner, sensors."""

    name: str

    def start(self, emit: Emit) -> None:
        """Begin producing events (threads of its own)."""
        ...

    def stop(self) -> None:
        """Stop producing events and release the device."""
        ...
