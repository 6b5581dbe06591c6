"""The occupancy a restarted kiosk starts from: the last one recorded, unless the venue has
closed since (gate.md: the occupancy resets at opening time, also for a kiosk that was off)."""

from __future__ import annotations

import logging

from kiosk.clock import parse_time
from kiosk.policy import VenuePolicy
from kiosk.store import EventStore

log = logging.getLogger(__name__)

RESTORE_LOOKBACK_S = 7 * 86_400.0  # opening hours repeat weekly


def last_occupancy(store: EventStore) -> tuple[int, float] | None:
    """(occupancy, when) of the newest event that carries one, so a restart keeps counting."""
    for event in reversed(store.events(after_seq=max(0, store.last_seq - 1000))):
        if isinstance(event.get("occupancy"), int):
            try:
                return event["occupancy"], parse_time(event["ts"])
            except (KeyError, TypeError, ValueError):
                return event["occupancy"], float("-inf")
    return None


def restored_occupancy(store: EventStore, policy: VenuePolicy, now: float) -> int:
    """The recorded occupancy, unless the venue closed since it was recorded: a kiosk that was
    off overnight starts the new day at 0, as a running one does at opening time."""
    last = last_occupancy(store)
    if last is None:
        return 0
    occupancy, at = last
    if occupancy and policy.hours and closed_between(policy, at, now):
        log.info("occupancy %d is from before closing time; the new day starts at 0", occupancy)
        return 0
    return occupancy


def closed_between(policy: VenuePolicy, start: float, end: float) -> bool:
    """Whether the venue was closed at some minute between ``start`` and ``end``."""
    if end - start > RESTORE_LOOKBACK_S:
        return True  # a week or more ago: some night lies in between
    t = max(start, end - RESTORE_LOOKBACK_S)
    while t < end:
        if not policy.is_open(t):
            return True
        t += 60.0
    return False  # closed only now: the controller resets the count at opening time
