"""The gate's journal: one plain line per change, at the right level, never a subject."""

from __future__ import annotations

import logging
import time

import pytest

from gate_rig import FakeClockGate, Rig
from kiosk.clock import FakeClock
from kiosk.gate.inputs import Command, DeviceStatus
from kiosk.gate.notes import (
    CommandNote,
    DeviceNote,
    FireNote,
    ForcedNote,
    ModeNote,
    TimeoutNote,
)
from kiosk.gate.view import GateView
from kiosk.journal import GateJournal
from kiosk.reasons import Mode, Source
from simulators.crowd import Crowd


@pytest.fixture
def rig(tmp_path, status_service):
    made: list[Rig] = []

    def make(url="service", **kw) -> Rig:
        r = Rig(tmp_path, status_service.url if url == "service" else url, **kw)
        made.append(r)
        return r.start()

    yield make
    for r in made:
        r.stop()


def gate_lines(caplog, level: int | None = None) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kiosk.gate" and (level is None or r.levelno == level)
    ]


def wait_line(caplog, text: str, timeout: float = 10.0) -> None:
    # The controller runs in its own thread: its line comes soon after the recorded event.
    deadline = time.monotonic() + timeout
    while not any(text in m for m in gate_lines(caplog)):
        assert time.monotonic() < deadline, f"no line with {text!r}: {gate_lines(caplog)}"
        time.sleep(0.01)


# -- modes --------------------------------------------------------------------------------


def test_fire_alarm_is_one_warning_naming_the_pin_then_closed_then_resume(rig, caplog):
    caplog.set_level(logging.INFO)
    r = rig()
    r.model.fire_alarm(True)
    r.wait(lambda e: e["type"] == "alarm")
    wait_line(caplog, "EMERGENCY")
    [line] = [m for m in gate_lines(caplog, logging.WARNING) if "fire-alarm" in m]
    assert line == (
        "EMERGENCY: fire-alarm contact on GPIO25 is open; turnstile held free until the "
        "contact closes and an operator resumes"
    )
    assert r.command("resume") == (False, "fire_alarm_active")
    wait_line(caplog, "refused")
    assert "command resume (local) refused: fire_alarm_active" in gate_lines(
        caplog, logging.WARNING
    )
    r.model.fire_alarm(False)
    r.wait(lambda e: e["type"] == "alarm", 2)
    wait_line(caplog, "closed;")
    assert (
        "fire-alarm contact on GPIO25 closed; the turnstile stays free until an operator resumes"
        in gate_lines(caplog, logging.INFO)
    )
    assert r.command("resume") == (True, None)
    wait_line(caplog, "resumed")
    assert "normal: resumed by operator command (was emergency); deciding codes" in gate_lines(
        caplog, logging.INFO
    )
    # One line per change: the fire contact opening is not told twice.
    assert sum("is open" in m for m in gate_lines(caplog)) == 1


def test_lockdown_and_resume_lines_are_never_rate_limited(rig, caplog):
    caplog.set_level(logging.INFO)
    r = rig()
    for _ in range(3):
        assert r.command("lockdown", origin="mqtt") == (True, None)
        assert r.command("resume", origin="mqtt") == (True, None)
    r.wait(lambda e: e["type"] == "mode", 7)  # start + 6 changes
    wait_line(caplog, "resumed")
    lockdowns = [m for m in gate_lines(caplog, logging.WARNING) if m.startswith("LOCKDOWN")]
    assert (
        lockdowns
        == [
            "LOCKDOWN (by operator command): turnstile locked, every code refused until an "
            "operator resumes"
        ]
        * 3
    )
    deadline = time.monotonic() + 5
    while sum(m.startswith("normal: resumed") for m in gate_lines(caplog)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_start_line_says_the_mode(rig, caplog):
    caplog.set_level(logging.INFO)
    rig()
    wait_line(caplog, "normal: deciding codes")


def test_restart_in_lockdown_is_one_line(tmp_path, caplog, status_service):
    caplog.set_level(logging.INFO)
    # As the daemon restores it from the record.
    lockdown = [("mode", {"mode": "lockdown", "previous": "normal", "cause": "lockdown"})]
    r = Rig(tmp_path, status_service.url, restored_events=lockdown)
    r.start()
    try:
        wait_line(caplog, "LOCKDOWN")
        assert gate_lines(caplog) == [
            "LOCKDOWN (as recorded before the restart): turnstile locked, every code refused "
            "until an operator resumes"
        ]
    finally:
        r.stop()


def test_closed_and_opening_time_reset_the_occupancy(tmp_path, caplog, status_service, population):
    """At opening time the count starts at 0 (whoever was counted in has long left)."""
    caplog.set_level(logging.INFO)
    # 2023-11-14 22:13 UTC, a Tuesday: open 08:00 to 22:00, so closed now.
    clock = FakeClock(1_700_000_000.0)
    hours = '[[policy.hours]]\nopen = "08:00"\nclose = "22:00"\n'
    # Restored from yesterday's record (recorded "now": no closing time in between).
    yesterday = [("passage", {"direction": "entry", "subject": None, "occupancy": 37})]
    r = Rig(tmp_path, status_service.url, clock=clock, extra_toml=hours, restored_events=yesterday)
    r.start()
    try:
        assert r.controller.mode is Mode.CLOSED
        wait_line(caplog, "closed at start")
        clock.advance(10 * 3600.0)  # 08:13 next morning
        # The first person of the day: opening time is judged when a code is decided (and
        # every 15 s by the loop's own timer).
        r.model.expect_walk_away()
        r.present(next(p for p in population.with_status("green") if p.iin).iin)
        [opened] = r.wait(lambda e: e["type"] == "mode" and e["mode"] == "normal")
        assert opened["occupancy"] == 0 and r.controller.occupancy == 0
        wait_line(caplog, "normal: opening time")
        assert (
            "normal: opening time (was closed); occupancy reset to 0; deciding codes"
            in gate_lines(caplog, logging.INFO)
        )
    finally:
        r.stop()


# -- passages -----------------------------------------------------------------------------


def test_forced_passages_are_rate_limited(tmp_path, status_service, caplog):
    caplog.set_level(logging.INFO)
    g = FakeClockGate(tmp_path, status_service.url)  # the journal's throttle runs on its clock
    try:
        for n in range(1, 4):
            g.passage()
            assert len(g.of("forced_passage")) == n
            g.advance(0.6)  # past the one-person hold-off
    finally:
        g.close()
    forced = [m for m in gate_lines(caplog, logging.WARNING) if m.startswith("forced passage")]
    assert forced == [
        "forced passage: someone passed the turnstile with no admission; alarm sounded"
    ]


def test_passage_timeout_is_info(rig, caplog, population):
    caplog.set_level(logging.INFO)
    r = rig()
    r.model.expect_walk_away()
    iin = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
    r.present(iin.sub[4:])
    r.wait(lambda e: e["type"] == "passage_timeout")
    wait_line(caplog, "passage timeout")
    assert (
        "passage timeout: the admitted person did not pass within 0.6 s; turnstile relocked, "
        "admission annulled" in gate_lines(caplog, logging.INFO)
    )


# -- devices ------------------------------------------------------------------------------


def test_device_lost_warning_back_info_and_flapping_held_back(rig, caplog):
    caplog.set_level(logging.INFO)
    r = rig()
    for _ in range(5):  # a loose USB cable
        r.controller.emit(DeviceStatus("camera", False, "no frames for 2.0 s"))
        r.controller.emit(DeviceStatus("camera", True, "back"))
    r.controller.emit(DeviceStatus("scanner", False, "lost: port path vanished"))
    wait_line(caplog, "scanner lost")
    assert [m for m in gate_lines(caplog) if m.startswith(("camera", "scanner"))] == [
        "camera lost: no frames for 2.0 s",
        "camera back",
        "scanner lost: lost: port path vanished",
    ]
    assert [r_.levelno for r_ in caplog.records if r_.getMessage() == "camera back"] == [
        logging.INFO
    ]


def test_relay_lost_and_back(rig, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    r = rig()
    turnstile = r.board.turnstile
    real_lock = turnstile.lock
    calls = {"n": 0}

    def failing_lock():
        calls["n"] += 1
        if calls["n"] <= 3:
            raise OSError("relay board unplugged")
        real_lock()

    monkeypatch.setattr(turnstile, "lock", failing_lock)
    assert r.command("lockdown") == (True, None)  # locks the turnstile
    wait_line(caplog, "relay back")
    relay = [m for m in gate_lines(caplog) if m.startswith("relay")]
    assert relay == [
        "relay lost: could not lock the turnstile (OSError); retrying",
        "relay back: turnstile locked",
    ]


# -- privacy ------------------------------------------------------------------------------


def test_no_subject_or_code_in_any_log_line(rig, caplog, population, issuer, status_service):
    """Every kind of presentation, online and offline: no IIN, passport number or code text
    appears in any log record of any logger."""
    caplog.set_level(logging.DEBUG)
    r = rig(gate={"cooldown_s": 0.5, "left_view_s": 0.0}, policy={"offline_rule": "pass"})
    green_iin = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
    passport = next(p for p in population.people if p.sub.startswith("passport:"))
    red_iin = next(p for p in population.with_status("red") if p.sub.startswith("iin:"))
    people = (green_iin, passport, red_iin)
    secrets = {p.sub.rsplit(":", 1)[1] for p in people}
    shown = [issuer.mint(p.sub, p.st) for p in people]
    shown += [green_iin.sub[4:], red_iin.sub[4:], "921029350851"]
    crowd = Crowd(population, issuer, seed=3)
    for _ in range(12):
        p = crowd.next(time.time())
        shown.append(p.text)
        if p.person is not None:
            secrets.add(p.person.sub.rsplit(":", 1)[1])
    # Then the status service is gone: the offline rule decides, and says so.
    # (people not asked before: the cache would answer for those)
    fresh = [p for p in population.people if p.sub.rsplit(":", 1)[1] not in secrets]
    late = [next(p for p in fresh if p.iin), next(p for p in fresh if not p.iin)]
    secrets |= {p.sub.rsplit(":", 1)[1] for p in late}
    offline = [issuer.mint(p.sub, p.st) for p in late] + [late[0].iin]
    n = 0
    for phase in (shown, offline):
        if phase is offline:
            status_service.faults.set(down=True)
        for text in phase:
            n += 1
            r.model.expect_walk_away()
            r.present(text, Source.CAMERA if n % 2 else Source.SCANNER)
            r.wait(lambda e: e["type"] == "decision", n, timeout=20)
    r.wait(lambda e: e["type"] == "passage_timeout", 2, timeout=20)
    assert {e["via"] for e in r.decisions(n)} >= {"online", "pass"}
    codes = shown + offline
    parts = {t for t in codes if len(t) >= 8} | {
        part for t in codes for part in t.split(".") if len(part) >= 16
    }
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in secrets | parts:
            assert secret not in line, f"{record.name} logged a subject or code: {line!r}"


# -- the words alone ----------------------------------------------------------------------


def test_words_of_each_mode(caplog):
    caplog.set_level(logging.INFO)
    j = GateJournal(fire_input="fire-alarm contact on GPIO7", unlock_s=5)
    j.mode(Mode.CLOSED, Mode.NORMAL, "schedule", occupancy_reset=False)
    j.mode(Mode.NORMAL, Mode.CLOSED, "schedule", occupancy_reset=False)
    j.mode(Mode.EMERGENCY, Mode.NORMAL, "start", occupancy_reset=False)
    j.passage_timeout("lockdown")
    j.passage_timeout("open_once")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "INFO",
            "closed: outside the venue's opening hours; turnstile locked until opening time",
        ),
        ("INFO", "normal: opening time (was closed); deciding codes"),
        (
            "WARNING",
            "EMERGENCY (as recorded before the restart): turnstile held free until an "
            "operator resumes",
        ),
        ("INFO", "admission annulled: the gate went to lockdown before the person passed"),
        (
            "INFO",
            "passage timeout: nobody passed within 5 s of an open_once; turnstile relocked",
        ),
    ]


def test_held_back_lines_are_counted_in_the_next_one(caplog):
    caplog.set_level(logging.INFO)
    now = [0.0]
    j = GateJournal(now=lambda: now[0], interval_s=30)
    for _ in range(4):
        j.forced_passage()
    now[0] = 31.0
    j.forced_passage()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[1].endswith("(3 more forced passages since the last line)")


def test_under_systemd_an_emergency_is_a_warning_priority_line(monkeypatch):
    """kiosk/logs.py: `journalctl -p warning` shows it (sd-daemon prefix <4>), one line."""
    import io

    from kiosk.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    try:
        setup_logging("info", stream=out)
        GateJournal(fire_input="fire-alarm contact on GPIO25").mode(
            Mode.EMERGENCY, Mode.NORMAL, "fire_alarm", occupancy_reset=False
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert out.getvalue() == (
        "<4>kiosk.gate: EMERGENCY: fire-alarm contact on GPIO25 is open; turnstile held free "
        "until the contact closes and an operator resumes\n"
    )


def test_words_of_the_fire_input_commands_and_a_flapping_device(caplog):
    caplog.set_level(logging.INFO)
    now = [0.0]
    j = GateJournal(fire_input="fire-alarm contact on GPIO25", now=lambda: now[0])
    j.fire(True, mode=Mode.EMERGENCY)  # opened again while the emergency was still latched
    j.command("reset_occupancy", "mqtt", True, None, "occupancy reset to 0 (was 12)")
    j.command("open_once", "console", False, "lockdown")
    j.command("resume", "mqtt", True, None)  # no change of mode: nothing to say
    for _ in range(3):
        j.device("scanner", False, "lost: port path vanished")
        j.device("scanner", True, "back")
    now[0] = 31.0
    j.device("scanner", False, "absent: no such file")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "fire-alarm contact on GPIO25 is open again; the gate stays in emergency, "
            "turnstile free",
        ),
        ("INFO", "command reset_occupancy (mqtt): occupancy reset to 0 (was 12)"),
        ("WARNING", "command open_once (console) refused: lockdown"),
        ("WARNING", "scanner lost: lost: port path vanished"),
        ("INFO", "scanner back"),
        (
            "WARNING",
            "scanner lost: absent: no such file (2 more scanner outages since the last line)",
        ),
    ]


# -- an observer of the view ------------------------------------------------------------


def test_the_journal_hears_the_notes_through_the_view(caplog):
    """The controller tells the view, the journal (an observer) says it: the same words."""
    caplog.set_level(logging.INFO)
    now = [0.0]
    view = GateView()
    view.subscribe(GateJournal(fire_input="fire-alarm contact on GPIO25", now=lambda: now[0]))
    view.note(ModeNote(Mode.EMERGENCY, Mode.NORMAL, "fire_alarm"))
    view.note(FireNote(False, Mode.EMERGENCY))
    view.note(ModeNote(Mode.NORMAL, Mode.CLOSED, "schedule", occupancy_reset=True))
    view.note(TimeoutNote("decision", 3.5))  # the window the controller opened, not a default
    view.note(ForcedNote())
    view.note(ForcedNote())  # held back: within the flood interval
    view.note(DeviceNote("camera", False, "no frames for 5 s"))
    view.note(DeviceNote("camera", True, "back"))
    view.note(CommandNote("open_once", "console", False, "busy", account="ops"))
    view.note(CommandNote("reload_config", "mqtt", False, "config_error"))  # its own line
    view.note(CommandNote("reset_occupancy", "mqtt", True, None, "occupancy reset to 0 (was 3)"))
    view.publish(mode="closed")  # snapshots and records say nothing in the journal
    view.recorded({"type": "decision", "subject": "s1"})
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "EMERGENCY: fire-alarm contact on GPIO25 is open; turnstile held free until the "
            "contact closes and an operator resumes",
        ),
        (
            "INFO",
            "fire-alarm contact on GPIO25 closed; the turnstile stays free until an operator "
            "resumes",
        ),
        ("INFO", "normal: opening time (was closed); occupancy reset to 0; deciding codes"),
        (
            "INFO",
            "passage timeout: the admitted person did not pass within 3.5 s; turnstile "
            "relocked, admission annulled",
        ),
        (
            "WARNING",
            "forced passage: someone passed the turnstile with no admission; alarm sounded",
        ),
        ("WARNING", "camera lost: no frames for 5 s"),
        ("INFO", "camera back"),
        ("WARNING", "command open_once (console) refused: busy"),
        ("INFO", "command reset_occupancy (mqtt): occupancy reset to 0 (was 3)"),
    ]


def test_a_failing_journal_never_stops_the_gate(tmp_path, status_service, caplog, monkeypatch):
    """The view guards its observers: a bug in the journal's words is logged (where, never the
    data) and the gate goes on deciding, recording and saying the rest."""

    def broken(self: GateJournal) -> None:
        raise RuntimeError("a bug in the journal's words")

    monkeypatch.setattr(GateJournal, "forced_passage", broken)
    caplog.set_level(logging.INFO)
    g = FakeClockGate(tmp_path, status_service.url)
    try:
        g.passage()
        g.handle(Command("lockdown", origin="local"))
        assert g.types()[-3:] == ["forced_passage", "mode", "command"]
        assert g.of("command")[-1]["ok"] and g.of("mode")[-1]["mode"] == "lockdown"
    finally:
        g.close()
    [bug] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "GateJournal.noted failed" in bug.getMessage() and "test_journal.py" in bug.getMessage()
    assert "journal's words" not in caplog.text
    assert gate_lines(caplog, logging.WARNING)[-1].startswith("LOCKDOWN (by operator command)")
