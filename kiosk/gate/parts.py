"""The controller's collaborators: the [gate] timing, what a restart restores, and the small
protocols the controller is built with (instead of callbacks). kiosk/assembly.py passes the
real ones; tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.devices import Indicator, Sounder, Turnstile
from kiosk.policy import VenuePolicy


@dataclass(frozen=True)
class GateTiming:
    """The [gate] keys the controller uses."""

    unlock_s: float = 5.0
    cooldown_s: float = 5.0
    left_view_s: float = 1.0
    deny_light_s: float = 2.0
    refer_light_s: float = 3.0
    leeway_s: float = 30.0

    @classmethod
    def from_config(cls, gate: Any, leeway_s: float) -> GateTiming:
        """From the validated [gate] section."""
        return cls(
            gate.unlock_s,
            gate.cooldown_s,
            gate.left_view_s,
            gate.deny_light_s,
            gate.refer_light_s,
            leeway_s,
        )


@dataclass(frozen=True)
class Restored:
    """What a restart carries over from the record (kiosk/assembly.py reads it)."""

    occupancy: int = 0
    lockdown: bool = False
    latched: bool = False


class GateDevices(Protocol):
    """The outputs the controller drives (kiosk.wiring.Hardware, drivers.gpio.GpioBoard)."""

    turnstile: Turnstile
    indicator: Indicator
    sounder: Sounder


class PolicySource(Protocol):
    """The venue policy in force, and a new one proposed (kiosk.policy.PolicyHolder)."""

    def current(self, now: float) -> VenuePolicy: ...

    def propose(self, policy: VenuePolicy, now: float) -> float: ...


class PolicyLoader(Protocol):
    """Loads the venue policy again from the configuration file (``reload_config``)."""

    def load_policy(self) -> VenuePolicy: ...


class GateMemory(Protocol):
    """What a passage leaves behind: the pass used (replay), the subject's passage time."""

    def mark_used(self, jti: str, until: float) -> None: ...

    def record_passage(self, subject: str, at: float) -> None: ...


class Heartbeat(Protocol):
    """Told on every turn of the loop (READY, the watchdog)."""

    def beat(self) -> None: ...


class NoMemory:
    """A gate that keeps nothing after a passage."""

    def mark_used(self, jti: str, until: float) -> None:
        pass

    def record_passage(self, subject: str, at: float) -> None:
        pass
