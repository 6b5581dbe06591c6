"""kiosk/gate/modes.py: gate.md's modes, judged without a controller."""

from __future__ import annotations

from kiosk.devices import Light
from kiosk.gate.modes import ModeMachine
from kiosk.reasons import Mode


def test_the_fire_contact_latches_emergency_until_closed_and_resumed():
    m = ModeMachine(since=0.0)
    assert m.judge(1.0, is_open=True, start=True).changed
    assert m.fire_input(True) and not m.fire_input(True)  # a level, told once per change
    change = m.judge(2.0, is_open=True)
    assert (change.mode, change.previous, change.changed) == (Mode.EMERGENCY, Mode.NORMAL, True)
    assert m.since == 2.0
    assert m.resume() == "fire_alarm_active"  # the contact is still open
    assert m.fire_input(False)
    assert m.judge(3.0, is_open=True).mode is Mode.EMERGENCY  # latched
    assert m.resume() is None
    assert m.judge(4.0, is_open=True).mode is Mode.NORMAL


def test_emergency_beats_lockdown_beats_closed():
    m = ModeMachine(since=0.0, lockdown=True)
    assert m.judge(0.0, is_open=False, start=True).mode is Mode.LOCKDOWN
    m.fire_input(True)
    assert m.judge(1.0, is_open=False).mode is Mode.EMERGENCY
    m.fire_input(False)
    m.resume()
    assert m.judge(2.0, is_open=False).mode is Mode.CLOSED


def test_opening_time_is_said_once_and_a_start_always_counts_as_a_change():
    m = ModeMachine(since=0.0)
    assert m.judge(0.0, is_open=False, start=True).changed
    unchanged = m.judge(1.0, is_open=False)
    assert not unchanged.changed and not unchanged.opened
    opened = m.judge(2.0, is_open=True)
    assert opened.opened and opened.changed and opened.mode is Mode.NORMAL
    assert not m.judge(3.0, is_open=True).opened


def test_a_restart_keeps_a_latched_emergency():
    m = ModeMachine(since=0.0, latched=True)
    assert m.judge(0.0, is_open=True, start=True).mode is Mode.EMERGENCY


def test_idle_light_per_mode():
    m = ModeMachine(since=0.0)
    m.judge(0.0, is_open=True, start=True)
    assert m.idle_light(offline=False) is Light.IDLE
    assert m.idle_light(offline=True) is Light.IDLE_OFFLINE
    m.lockdown = True
    m.judge(1.0, is_open=True)
    assert m.idle_light(offline=True) is Light.LOCKED
