"""kiosk/timers.py: named one-shot deadlines the controller's loop asks about."""

from __future__ import annotations

from kiosk.timers import Timers


def test_due_timers_pop_earliest_first_with_their_tokens():
    t = Timers()
    t.set("light", 12.0)
    t.set("unlock", 10.0, 7)
    t.set("hours", 30.0)
    assert t.next_due() == 10.0
    assert t.pop_due(9.99) == []
    assert t.pop_due(12.0) == [("unlock", 7), ("light", None)]
    assert not t.pending("unlock") and t.pending("hours")
    assert t.next_due() == 30.0


def test_setting_a_name_again_replaces_its_deadline_and_cancel_forgets_it():
    t = Timers()
    t.set("unlock", 10.0, 1)
    t.set("unlock", 20.0, 2)
    assert t.pop_due(15.0) == []
    assert t.pop_due(20.0) == [("unlock", 2)]
    t.set("relock", 5.0)
    t.cancel("relock")
    t.cancel("never set")
    assert t.next_due() is None and t.pop_due(100.0) == []
