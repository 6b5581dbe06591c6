"""kiosk/status/cache.py: answers kept for their max_age, bounded, keyed by pseudonym."""

from __future__ import annotations

from kiosk.clock import FakeClock
from kiosk.status.cache import AnswerCache


def test_an_answer_is_reused_until_its_max_age_only():
    clock = FakeClock()
    cache = AnswerCache(clock=clock)
    cache.put("ps-1", "green", 60.0)
    assert cache.get("ps-1") == "green"
    clock.advance(59.9)
    assert cache.get("ps-1") == "green"
    clock.advance(0.1)
    assert cache.get("ps-1") is None and len(cache) == 0
    assert cache.get("never") is None


def test_max_age_zero_means_do_not_reuse_and_replaces_an_older_answer():
    cache = AnswerCache(clock=FakeClock())
    cache.put("ps-1", "green", 60.0)
    cache.put("ps-1", "red", 0)
    assert cache.get("ps-1") is None


def test_the_least_recently_stored_answers_go_first():
    cache = AnswerCache(clock=FakeClock(), max_entries=2)
    cache.put("a", "green", 60)
    cache.put("b", "green", 60)
    cache.put("a", "blue", 60)  # stored again: now the newest
    cache.put("c", "red", 60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("blue", None, "red")
    assert len(cache) == 2
