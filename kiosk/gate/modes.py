"""The gate's mode (gate.md, Modes): emergency latched by the fire alarm, lockdown by an
operator, closed outside opening hours, otherwise normal; the occupancy starts afresh at
opening time.

Only the controller's loop calls this; it holds no lock. The controller acts on what
``judge`` returns (relock or free the turnstile, record the ``mode`` event).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.devices import Light
from kiosk.reasons import Mode


@dataclass(frozen=True)
class ModeChange:
    """What judging the mode found: the mode now, the one before, whether it changed (a start
    always counts as a change) and whether the venue just opened (a new day)."""

    mode: Mode
    previous: Mode
    changed: bool
    opened: bool


class ModeMachine:
    """The state behind the mode: the fire contact, the latch, the lockdown, opening hours.

    ``latched`` and ``lockdown`` are restored from the record: a restart ends neither.
    """

    def __init__(self, *, since: float, latched: bool = False, lockdown: bool = False) -> None:
        self.mode = Mode.NORMAL
        self.since = since
        self.latched = latched
        self.lockdown = lockdown
        self.fire_open = False
        self.closed = False

    def judge(self, now: float, *, is_open: bool, start: bool = False) -> ModeChange:
        """The mode at ``now`` (epoch seconds), the venue being open or not."""
        was_closed, self.closed = self.closed, not is_open
        if self.latched:
            mode = Mode.EMERGENCY
        elif self.lockdown:
            mode = Mode.LOCKDOWN
        elif self.closed:
            mode = Mode.CLOSED
        else:
            mode = Mode.NORMAL
        previous = self.mode
        changed = start or mode is not previous
        if changed:
            self.mode, self.since = mode, now
        return ModeChange(mode, previous, changed, opened=was_closed and not self.closed)

    def fire_input(self, is_open: bool) -> bool:
        """The fire contact's level; True when it changed. Opening latches the emergency: the
        turnstile stays free after the contact closes, until an operator resumes."""
        was_open, self.fire_open = self.fire_open, is_open
        if is_open and not was_open:
            self.latched = True
        return is_open != was_open

    def resume(self) -> str | None:
        """End a latched emergency or a lockdown; the refusal's name if it may not be ended."""
        if self.fire_open:
            return "fire_alarm_active"
        self.latched = False
        self.lockdown = False
        return None

    def idle_light(self, *, offline: bool) -> Light:
        """The light shown when nobody is being decided."""
        if self.mode is Mode.EMERGENCY:
            return Light.EMERGENCY
        if self.mode in (Mode.LOCKDOWN, Mode.CLOSED):
            return Light.LOCKED
        return Light.IDLE_OFFLINE if offline else Light.IDLE
