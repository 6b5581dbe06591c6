"""Venue policy (gate.md): allowed statuses by weekday and time, opening hours, lock time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.clock import FakeClock
from kiosk.policy import (
    MINUTES_PER_DAY,
    OfflineRule,
    PolicyHolder,
    StatusRule,
    VenuePolicy,
    Window,
)

ALMATY = "Asia/Almaty"
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKDAYS = frozenset({MON, TUE, WED, THU, FRI})
WEEKEND = frozenset({SAT, SUN})
EVERY_DAY = frozenset(range(7))
GREEN = frozenset({"green"})
GREEN_BLUE = frozenset({"green", "blue"})


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0, tz: str = ALMATY) -> float:
    """The epoch instant of a local wall time (whatever offset the tz database gives)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp()


def hm(hour: int, minute: int = 0) -> int:
    return hour * 60 + minute


# 2024-06-01 is a Saturday.
assert datetime(2024, 6, 1).weekday() == SAT

CINEMA = VenuePolicy(
    name="cinema",
    allowed=GREEN_BLUE,
    rules=(StatusRule(Window(WEEKEND), GREEN),),
    timezone=ALMATY,
)


# -- allowed statuses by weekday, in the venue's time zone ----------------------------------


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        (at(2024, 6, 3, 12), GREEN_BLUE),  # Monday
        (at(2024, 6, 5, 19), GREEN_BLUE),  # Wednesday evening
        (at(2024, 5, 31, 23, 59), GREEN_BLUE),  # Friday, last minute
        (at(2024, 6, 1, 0, 0), GREEN),  # Saturday, first minute
        (at(2024, 6, 1, 15), GREEN),
        (at(2024, 6, 2, 23, 59), GREEN),  # Sunday, last minute
        (at(2024, 6, 3, 0, 0), GREEN_BLUE),  # Monday again
    ],
)
def test_cinema_admits_green_only_at_weekends(when: float, allowed: frozenset[str]) -> None:
    assert CINEMA.allowed_at(when) == allowed


def test_weekday_is_taken_in_the_venue_time_zone() -> None:
    # Saturday 00:30 in Almaty is still Friday in UTC: the same instant, two answers.
    when = at(2024, 6, 1, 0, 30)
    assert datetime.fromtimestamp(when, ZoneInfo("UTC")).weekday() == FRI
    assert CINEMA.allowed_at(when) == GREEN
    utc_cinema = VenuePolicy(allowed=GREEN_BLUE, rules=CINEMA.rules, timezone="UTC")
    assert utc_cinema.allowed_at(when) == GREEN_BLUE


def test_explicit_weekday_and_weekend_rules() -> None:
    policy = VenuePolicy(
        allowed=frozenset(),  # no rule matches: nobody
        rules=(StatusRule(Window(WEEKDAYS), GREEN_BLUE), StatusRule(Window(WEEKEND), GREEN)),
        timezone=ALMATY,
    )
    assert policy.allowed_at(at(2024, 6, 4)) == GREEN_BLUE
    assert policy.allowed_at(at(2024, 6, 1)) == GREEN


def test_first_matching_rule_wins() -> None:
    policy = VenuePolicy(
        allowed=GREEN_BLUE,
        rules=(
            StatusRule(Window(EVERY_DAY, hm(20), hm(22)), frozenset({"blue"})),
            StatusRule(Window(EVERY_DAY), GREEN),
        ),
        timezone=ALMATY,
    )
    assert policy.allowed_at(at(2024, 6, 3, 21)) == frozenset({"blue"})
    assert policy.allowed_at(at(2024, 6, 3, 22)) == GREEN


def test_no_rules_gives_the_default_allowed() -> None:
    gym = VenuePolicy(allowed=GREEN_BLUE, timezone=ALMATY)
    airport = VenuePolicy(allowed=GREEN, timezone=ALMATY)
    for day in range(1, 8):
        assert gym.allowed_at(at(2024, 6, day)) == GREEN_BLUE
        assert airport.allowed_at(at(2024, 6, day)) == GREEN


def test_time_window_rule_boundaries() -> None:
    # Matinee 10:00-14:00 on weekdays admits blue as well; otherwise green only.
    policy = VenuePolicy(
        allowed=GREEN,
        rules=(StatusRule(Window(WEEKDAYS, hm(10), hm(14)), GREEN_BLUE),),
        timezone=ALMATY,
    )
    assert policy.allowed_at(at(2024, 6, 3, 9, 59)) == GREEN
    assert policy.allowed_at(at(2024, 6, 3, 10, 0)) == GREEN_BLUE
    assert policy.allowed_at(at(2024, 6, 3, 13, 59)) == GREEN_BLUE
    assert policy.allowed_at(at(2024, 6, 3, 14, 0)) == GREEN
    assert policy.allowed_at(at(2024, 6, 1, 11, 0)) == GREEN  # Saturday


def test_local_time_across_daylight_saving() -> None:
    # 09:00-17:00 local in a zone with DST holds in winter and in summer alike.
    policy = VenuePolicy(
        allowed=frozenset(),
        rules=(StatusRule(Window(EVERY_DAY, hm(9), hm(17)), GREEN),),
        timezone="Europe/Berlin",
    )
    for month in (1, 7):
        assert policy.allowed_at(at(2024, month, 10, 9, 0, tz="Europe/Berlin")) == GREEN
        assert policy.allowed_at(at(2024, month, 10, 8, 59, tz="Europe/Berlin")) == frozenset()


# -- windows -------------------------------------------------------------------------------


def test_whole_day_window() -> None:
    w = Window(frozenset({MON}))
    assert w.contains(MON, 0)
    assert w.contains(MON, MINUTES_PER_DAY - 1)
    assert not w.contains(TUE, 0)
    assert not w.contains(SUN, MINUTES_PER_DAY - 1)


def test_window_start_inclusive_end_exclusive() -> None:
    w = Window(frozenset({MON}), hm(10), hm(12))
    assert not w.contains(MON, hm(9, 59))
    assert w.contains(MON, hm(10))
    assert w.contains(MON, hm(11, 59))
    assert not w.contains(MON, hm(12))


def test_window_crossing_midnight() -> None:
    late_show = Window(frozenset({FRI}), hm(22), hm(2))  # Friday 22:00 to Saturday 02:00
    assert not late_show.contains(FRI, hm(21, 59))
    assert late_show.contains(FRI, hm(22))
    assert late_show.contains(FRI, hm(23, 59))
    assert late_show.contains(SAT, 0)
    assert late_show.contains(SAT, hm(1, 59))
    assert not late_show.contains(SAT, hm(2))
    # The early hours of Friday belong to Thursday's window, which does not exist.
    assert not late_show.contains(FRI, hm(1))
    # Saturday evening is not in the window: only Friday starts one.
    assert not late_show.contains(SAT, hm(23))


def test_window_crossing_midnight_wraps_sunday_into_monday() -> None:
    w = Window(frozenset({SUN}), hm(23), hm(1))
    assert w.contains(SUN, hm(23, 30))
    assert w.contains(MON, hm(0, 30))
    assert not w.contains(MON, hm(1))
    assert not w.contains(SAT, hm(23, 30))


def test_window_with_end_equal_to_start_runs_24_hours() -> None:
    w = Window(frozenset({MON}), hm(10), hm(10))
    assert not w.contains(MON, hm(9, 59))
    assert w.contains(MON, hm(10))
    assert w.contains(TUE, hm(9, 59))
    assert not w.contains(TUE, hm(10))


def test_late_show_rule_in_almaty() -> None:
    # Weekday late shows (22:00-02:00) admit green only; the rest of the week green and blue.
    policy = VenuePolicy(
        allowed=GREEN_BLUE,
        rules=(StatusRule(Window(WEEKDAYS, hm(22), hm(2)), GREEN),),
        timezone=ALMATY,
    )
    assert policy.allowed_at(at(2024, 5, 31, 21, 59)) == GREEN_BLUE  # Friday
    assert policy.allowed_at(at(2024, 5, 31, 22, 0)) == GREEN
    assert policy.allowed_at(at(2024, 6, 1, 1, 30)) == GREEN  # Saturday, Friday's show
    assert policy.allowed_at(at(2024, 6, 1, 2, 0)) == GREEN_BLUE
    assert policy.allowed_at(at(2024, 6, 1, 23, 0)) == GREEN_BLUE  # Saturday evening
    assert policy.allowed_at(at(2024, 6, 3, 1, 0)) == GREEN_BLUE  # Monday: Sunday had none


# -- opening hours --------------------------------------------------------------------------


def test_no_hours_means_always_open() -> None:
    policy = VenuePolicy(timezone=ALMATY)
    assert all(policy.is_open(at(2024, 6, d, h)) for d in range(1, 8) for h in range(24))


def test_opening_hours_boundaries() -> None:
    policy = VenuePolicy(hours=(Window(EVERY_DAY, hm(10), hm(23)),), timezone=ALMATY)
    assert not policy.is_open(at(2024, 6, 3, 9, 59))
    assert policy.is_open(at(2024, 6, 3, 10, 0))
    assert policy.is_open(at(2024, 6, 3, 22, 59))
    assert not policy.is_open(at(2024, 6, 3, 23, 0))


def test_opening_hours_in_the_venue_time_zone() -> None:
    policy = VenuePolicy(hours=(Window(EVERY_DAY, hm(10), hm(23)),), timezone=ALMATY)
    utc = VenuePolicy(hours=policy.hours, timezone="UTC")
    when = at(2024, 6, 3, 10, 30)  # 10:30 in Almaty is before 10:00 UTC
    assert policy.is_open(when)
    assert not utc.is_open(when)


def test_opening_hours_crossing_midnight_and_closed_day() -> None:
    bar = VenuePolicy(
        hours=(Window(EVERY_DAY - {MON}, hm(18), hm(3)),),  # closed on Mondays
        timezone=ALMATY,
    )
    assert bar.is_open(at(2024, 6, 1, 18, 0))  # Saturday
    assert bar.is_open(at(2024, 6, 2, 2, 59))  # Sunday early: Saturday's night
    assert not bar.is_open(at(2024, 6, 2, 3, 0))
    assert bar.is_open(at(2024, 6, 3, 2, 0))  # Monday early: Sunday's night
    assert not bar.is_open(at(2024, 6, 3, 20, 0))  # Monday evening: closed
    assert not bar.is_open(at(2024, 6, 4, 1, 0))  # Tuesday early: Monday had no night
    assert bar.is_open(at(2024, 6, 4, 19, 0))


def test_several_opening_windows() -> None:
    policy = VenuePolicy(
        hours=(Window(WEEKDAYS, hm(7), hm(12)), Window(WEEKDAYS, hm(16), hm(22))),
        timezone=ALMATY,
    )
    assert policy.is_open(at(2024, 6, 3, 8))
    assert not policy.is_open(at(2024, 6, 3, 13))
    assert policy.is_open(at(2024, 6, 3, 17))
    assert not policy.is_open(at(2024, 6, 1, 8))  # Saturday


def test_policy_defaults() -> None:
    policy = VenuePolicy()
    assert policy.allowed == GREEN_BLUE
    assert policy.offline_rule is OfflineRule.REFER
    assert policy.max_pass_age_s == 300.0
    assert policy.capacity is None


# -- the lock time --------------------------------------------------------------------------

T0 = 1_700_000_000.0


def test_new_policy_waits_for_the_current_lock_time() -> None:
    clock = FakeClock(T0)
    old = VenuePolicy(name="old", lock_s=600)
    new = VenuePolicy(name="new", lock_s=0)
    holder = PolicyHolder(old)
    assert holder.propose(new, clock.time()) == T0 + 600
    assert holder.pending == (new, T0 + 600)
    assert holder.current(clock.time()) is old
    clock.advance(599.999)
    assert holder.current(clock.time()) is old
    clock.advance(0.001)
    assert holder.current(clock.time()) is new
    assert holder.pending is None


def test_lock_time_is_the_current_policys_not_the_new_ones() -> None:
    # A relaxed policy cannot shorten its own delay...
    holder = PolicyHolder(VenuePolicy(name="strict", lock_s=3600))
    relaxed = VenuePolicy(name="relaxed", lock_s=0)
    assert holder.propose(relaxed, T0) == T0 + 3600
    assert holder.current(T0 + 3599).name == "strict"
    # ...and with no lock in force a change applies at once, whatever the new lock.
    holder = PolicyHolder(VenuePolicy(name="open", lock_s=0))
    locked = VenuePolicy(name="locked", lock_s=3600)
    assert holder.propose(locked, T0) == T0
    assert holder.current(T0) is locked


def test_no_flipping_person_by_person() -> None:
    # Relax for a friend and revert at once: the last proposal replaces the first, and
    # nothing changes before the lock time has passed.
    strict = VenuePolicy(name="strict", allowed=GREEN, lock_s=600)
    relaxed = VenuePolicy(name="relaxed", allowed=GREEN_BLUE, lock_s=600)
    holder = PolicyHolder(strict)
    holder.propose(relaxed, T0)
    holder.propose(strict, T0 + 10)
    for t in (T0, T0 + 10, T0 + 300, T0 + 600, T0 + 609, T0 + 610, T0 + 10_000):
        assert holder.current(t).allowed == GREEN
    assert holder.pending is None


def test_the_lock_time_of_a_policy_that_took_effect_applies_even_if_not_yet_read() -> None:
    # A (lock 60 s) is in force; B (lock 600 s) is proposed and becomes due at T0 + 60.
    # At T0 + 100, B is the policy in force, so a further change must wait B's 600 s.
    a = VenuePolicy(name="a", lock_s=60)
    b = VenuePolicy(name="b", lock_s=600)
    c = VenuePolicy(name="c", lock_s=0)
    holder = PolicyHolder(a)
    holder.propose(b, T0)
    # BUG: kiosk/policy.py PolicyHolder.propose reads self._current without first promoting
    # a pending policy whose time has come. If nobody called current() since B became due,
    # propose(C) uses A's lock (60 s, so C applies at T0 + 160 instead of T0 + 700) and
    # overwrites B, which then never takes effect at all. Fix: in propose(), under the lock,
    # promote a due pending policy first (same code as in current()) before computing
    # `now + self._current.lock_s`.
    effective = holder.propose(c, T0 + 100)
    assert effective == T0 + 700
    assert holder.current(T0 + 150) is b
