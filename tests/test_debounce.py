"""kiosk/debounce.py: a code that stays in view is decided once (gate.md)."""

from __future__ import annotations

from kiosk.debounce import SightingFilter


def test_a_code_in_view_is_decided_once_until_it_leaves_the_view():
    f = SightingFilter(left_view_s=1.0, cooldown_s=60.0)
    assert f.should_decide(b"code", 0.0)
    assert not f.should_decide(b"code", 0.5)
    assert not f.should_decide(b"code", 1.4)  # seen 0.9 s ago: still in view
    assert f.should_decide(b"code", 2.5)  # out of view for 1.1 s: a new showing
    assert f.should_decide(b"other", 2.5)  # another code is another sighting


def test_a_code_that_stays_in_view_is_decided_again_after_the_cooldown():
    f = SightingFilter(left_view_s=1.0, cooldown_s=2.0)
    assert f.should_decide(b"code", 0.0)
    decided = [t / 10 for t in range(1, 50) if f.should_decide(b"code", t / 10)]
    assert decided == [2.0, 4.0]


def test_prune_forgets_codes_that_no_longer_suppress_and_keeps_no_raw_code():
    f = SightingFilter(left_view_s=1.0, cooldown_s=3.0)
    f.should_decide(b"secret code", 0.0)
    f.should_decide(b"later", 2.0)
    assert b"secret code" not in f._seen  # short hashes only
    f.prune(3.5)
    assert len(f) == 1
    f.prune(5.0)
    assert len(f) == 0
