"""Venue policy (gate.md): who may enter, when, how many, and how often.

Plain data and pure functions of time, so tests drive them with any instant they like.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60


class OfflineRule(StrEnum):
    """What the gate does when the status service gives no answer (gate.md)."""

    DENY = "deny"
    REFER = "refer"
    PASS = "pass"


class AntiPassback(StrEnum):
    """Whether a subject who just passed may pass again."""

    OFF = "off"
    SOFT = "soft"
    HARD = "hard"


@dataclass(frozen=True, slots=True)
class Window:
    """Weekdays (0 = Monday) and a time span in minutes; an end at or before the start runs
    past midnight into the next day, as a cinema's late show does."""

    days: frozenset[int]
    start_min: int = 0
    end_min: int = MINUTES_PER_DAY

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether local ``weekday`` and ``minute`` of the day fall inside the window."""
        if self.start_min < self.end_min:
            return weekday in self.days and self.start_min <= minute < self.end_min
        # Crosses midnight: the late part belongs to the day the window started.
        if weekday in self.days and minute >= self.start_min:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end_min


@dataclass(frozen=True, slots=True)
class StatusRule:
    """Inside ``window``, these statuses may enter (the first matching rule wins)."""

    window: Window
    allowed: frozenset[str]


@dataclass(frozen=True, slots=True)
class VenuePolicy:
    """One venue profile, as loaded from the configuration."""

    name: str = "default"
    allowed: frozenset[str] = frozenset({"green", "blue"})
    rules: tuple[StatusRule, ...] = ()
    hours: tuple[Window, ...] = ()
    capacity: int | None = None
    anti_passback: AntiPassback = AntiPassback.OFF
    anti_passback_s: float = 0.0
    offline_rule: OfflineRule = OfflineRule.REFER
    max_pass_age_s: float = 300.0
    lock_s: float = 0.0
    timezone: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))

    def _local(self, now: float) -> tuple[int, int]:
        t = datetime.fromtimestamp(now, tz=self._zone)
        return t.weekday(), t.hour * 60 + t.minute

    def allowed_at(self, now: float) -> frozenset[str]:
        """The statuses that may enter at wall time ``now``."""
        if not self.rules:
            return self.allowed
        day, minute = self._local(now)
        for rule in self.rules:
            if rule.window.contains(day, minute):
                return rule.allowed
        return self.allowed

    def is_open(self, now: float) -> bool:
        """Whether ``now`` is within the opening hours (no hours configured: always open)."""
        if not self.hours:
            return True
        day, minute = self._local(now)
        return any(w.contains(day, minute) for w in self.hours)


class PolicyHolder:
    """Holds the venue policy in force and delays a new one by the current lock time.

    gate.md: a policy change takes effect no sooner than the configured lock time, so nobody
    can flip the rules person by person (say, relax them for a friend and back).
    """

    def __init__(self, policy: VenuePolicy) -> None:
        self._current = policy
        self._pending: tuple[VenuePolicy, float] | None = None
        self._lock = threading.Lock()

    def _promote(self, now: float) -> None:
        if self._pending is not None and now >= self._pending[1]:
            self._current, self._pending = self._pending[0], None

    def current(self, now: float) -> VenuePolicy:
        """The policy in force at ``now`` (a pending one becomes current once its time comes)."""
        with self._lock:
            self._promote(now)
            return self._current

    def propose(self, policy: VenuePolicy, now: float) -> float:
        """Schedule ``policy``; returns the wall time from which it applies."""
        with self._lock:
            self._promote(now)
            effective = now + self._current.lock_s
            self._pending = (policy, effective)
            return effective

    @property
    def pending(self) -> tuple[VenuePolicy, float] | None:
        """The policy waiting for its lock time, with the time it takes effect."""
        return self._pending
