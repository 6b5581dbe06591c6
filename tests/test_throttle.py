"""kiosk/throttle.py: one log line per key per interval, and a count of what was held."""

from __future__ import annotations

from kiosk.clock import FakeClock
from kiosk.throttle import LogThrottle


def test_one_line_per_key_per_interval_then_the_count_held_back():
    clock = FakeClock()
    t = LogThrottle(30.0, now=clock.monotonic)
    assert t.allow("forced") == (True, 0)
    assert t.allow("forced") == (False, 0)
    assert t.allow("forced") == (False, 0)
    assert t.allow("device:camera") == (True, 0)  # keys are counted apart
    clock.advance(29.9)
    assert t.allow("forced") == (False, 0)
    clock.advance(0.1)
    assert t.allow("forced") == (True, 3)
    assert t.allow("forced") == (False, 0)
    clock.advance(30.0)
    assert t.allow("forced") == (True, 1)
    assert t.allow("device:camera") == (True, 0)
