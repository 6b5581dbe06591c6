"""gate.md's turnstile, safety and indicator rules, on mock pins with the real drivers."""

from __future__ import annotations

import time

import pytest

from drivers.gpio import GpioBoard
from gate_rig import FAST_GATE, FakeClockGate, Rig
from kiosk.devices import Light
from kiosk.gate.window import PASSAGE_HOLDOFF_S
from kiosk.reasons import Source
from simulators.turnstile import SimPinFactory


@pytest.fixture
def gate(tmp_path, status_service):
    """A fake-clock gate (no threads, no sleeps): timing rules, deterministically."""
    made: list[FakeClockGate] = []

    def make(url="service", **sections) -> FakeClockGate:
        g = FakeClockGate(tmp_path, status_service.url if url == "service" else url, **sections)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


@pytest.fixture
def rig(tmp_path, status_service):
    made: list[Rig] = []

    def make(url="service", **sections) -> Rig:
        r = Rig(tmp_path, status_service.url if url == "service" else url, **sections)
        made.append(r)
        return r.start()

    yield make
    for r in made:
        r.stop()


def green_iin(population):
    return next(p for p in population.with_status("green") if p.sub.startswith("iin:"))


def green_pass(population, issuer, **kw):
    p = population.with_status("green")[1]
    return issuer.mint(p.sub, "green", **kw)


# -- the turnstile ----------------------------------------------------------------------------


def test_relay_is_low_before_during_and_after_start_and_stop(tmp_path):
    factory = SimPinFactory()
    board = GpioBoard.from_config({"relay": 17}, {}, pin_factory=factory)
    relay = factory.sim_pin(17)
    assert [s for _, s in relay.states] == [0]  # released the instant it exists
    board.close()
    assert all(s == 0 for _, s in relay.states)


def test_admission_then_passage_ends_the_window_early(rig, population, issuer):
    r = rig(gate={"unlock_s": 30})
    r.model.expect_walk(0.1)
    r.present(green_pass(population, issuer))
    [decision] = r.decisions()
    assert (decision["decision"], decision["reason"], decision["source"]) == (
        "admit",
        "admitted",
        "scanner",
    )
    [passage] = r.wait(lambda e: e["type"] == "passage")
    assert passage["subject"] == decision["subject"] and passage["occupancy"] == 1
    assert r.model.wait_for("relay_locked")
    assert r.view.snapshot().occupancy == 1
    assert not r.board.turnstile.is_free
    assert r.relay_levels() == [0, 1, 0]  # one admission, one passage


def test_used_pass_is_replayed_after_its_passage(gate, population, issuer):
    g = gate(gate={"cooldown_s": 0.5, "left_view_s": 0.1})
    text = green_pass(population, issuer)
    g.present(text)
    g.passage()
    assert g.of("passage")
    g.advance(0.6)  # past the same-code cooldown
    g.present(text)
    assert g.of("decision")[1]["reason"] == "replayed"


def test_admitted_person_who_never_passes_relocks_and_annuls(gate, population, issuer):
    g = gate(gate={"cooldown_s": 0.5, "left_view_s": 0.1})
    text = green_pass(population, issuer)
    g.present(text)
    assert g.board.turnstile.is_free
    g.advance(FAST_GATE["unlock_s"])  # nobody passes
    [timeout] = g.of("passage_timeout")
    assert timeout["subject"] == g.of("decision")[0]["subject"]
    assert not g.board.turnstile.is_free
    assert g.view.snapshot().occupancy == 0
    g.advance(0.6)
    g.present(text)  # annulled: the same pass may be shown again
    assert g.of("decision")[1]["decision"] == "admit"
    g.passage()
    assert g.of("passage")


def test_passage_with_no_admission_alarms(rig):
    r = rig()
    r.model.force_passage()
    [forced] = r.wait(lambda e: e["type"] == "forced_passage")
    assert forced["subject"] is None
    assert r.view.snapshot().occupancy == 0
    assert r.board.sounder.wait_done(10)
    buzzer = r.factory.sim_pin(r.cfg.gpio.buzzer)
    assert sum(1 for _, s in buzzer.states if s) >= 3  # the alarm is several beeps


def test_same_code_in_view_is_decided_once(gate, population):
    g = gate(gate={"cooldown_s": 60, "left_view_s": 0.3})
    iin = green_iin(population).sub[4:]
    for _ in range(10):  # a camera sees it in frame after frame
        g.present(iin, Source.CAMERA)
        g.advance(0.02)
    assert len(g.of("decision")) == 1
    g.advance(FAST_GATE["unlock_s"])
    assert g.of("passage_timeout")
    g.advance(0.4)  # it left the view for longer than left_view_s
    g.present(iin, Source.CAMERA)
    assert len(g.of("decision")) == 2


def test_codes_shown_while_the_gate_is_busy_wait_their_turn(rig, population, issuer):
    r = rig(gate={"unlock_s": 30})
    people = population.with_status("green")[2:5]
    for _ in people:
        r.model.expect_walk(0.05)
    for p in people:
        r.present(issuer.mint(p.sub, "green"))
    r.wait(lambda e: e["type"] == "passage", 3)
    assert [e["type"] for e in r.events if e["type"] in ("decision", "passage")] == [
        "decision",
        "passage",
    ] * 3


def test_capacity_counts_entries_and_exits(rig, population, issuer):
    r = rig(policy={"capacity": 1})
    r.model.expect_walk(0.05)
    r.present(green_pass(population, issuer))
    r.wait(lambda e: e["type"] == "passage")
    r.present(green_iin(population).sub[4:])
    assert r.decisions(2)[1]["reason"] == "venue_full"
    r.model.exit_passage()
    [exit_] = r.wait(lambda e: e.get("direction") == "exit")
    assert exit_["occupancy"] == 0


def test_reset_occupancy_command_empties_a_full_venue(rig, population, issuer):
    r = rig(policy={"capacity": 1})
    r.model.expect_walk(0.05)
    r.present(green_pass(population, issuer))
    r.wait(lambda e: e["type"] == "passage")
    assert r.view.snapshot().occupancy == 1
    assert r.command("reset_occupancy", origin="mqtt") == (True, None)
    [cmd] = r.wait(lambda e: e["type"] == "command")
    assert (cmd["cmd"], cmd["ok"], cmd["occupancy"]) == ("reset_occupancy", True, 0)
    assert r.view.snapshot().occupancy == 0
    r.model.expect_walk_away()
    r.present(green_iin(population).sub[4:])
    assert r.decisions(2)[1]["reason"] == "admitted"  # no longer venue_full


def test_open_once_command(rig):
    r = rig()
    r.model.expect_walk(0.05)
    assert r.command("open_once") == (True, None)
    [passage] = r.wait(lambda e: e["type"] == "passage")
    assert passage["cause"] == "open_once" and passage["subject"] is None
    assert r.wait(lambda e: e["type"] == "command")[0]["ok"] is True


# -- safety -----------------------------------------------------------------------------------


def test_fire_alarm_frees_the_turnstile_answers_emergency_and_stays_latched(rig, population):
    r = rig()
    r.model.fire_alarm(True)
    r.wait(lambda e: e["type"] == "mode" and e["mode"] == "emergency")
    assert r.wait(lambda e: e["type"] == "alarm")[0]["input"] == "open"
    assert r.board.turnstile.is_free and r.board.indicator.shown is Light.EMERGENCY
    r.present("garbage")
    r.present(green_iin(population).sub[4:])
    assert [(d["decision"], d["reason"]) for d in r.decisions(2)] == [("refer", "emergency")] * 2
    r.model.fire_alarm(False)
    r.wait(lambda e: e["type"] == "alarm" and e["input"] == "closed")
    assert r.controller.mode == "emergency" and r.board.turnstile.is_free  # latched
    assert r.command("resume") == (True, None)
    r.wait(lambda e: e["type"] == "mode" and e["mode"] == "normal")
    assert not r.board.turnstile.is_free and r.board.indicator.shown is Light.IDLE


def test_resume_is_refused_while_the_contact_is_open(rig):
    r = rig()
    r.model.fire_alarm(True)
    r.wait(lambda e: e["type"] == "mode" and e["mode"] == "emergency")
    assert r.command("resume") == (False, "fire_alarm_active")
    assert r.board.turnstile.is_free


def test_fire_alarm_overrides_an_in_progress_decision(rig, population, status_service):
    status_service.faults.set(latency_ms=600)
    r = rig(status={"deadline_ms": 3000})
    p = next(p for p in population.with_status("red") if p.sub.startswith("iin:"))
    r.present(p.sub[4:])
    time.sleep(0.2)  # the lookup is under way
    r.model.fire_alarm(True)
    [d] = r.decisions()
    assert (d["decision"], d["reason"]) == ("refer", "emergency")
    assert r.board.turnstile.is_free


def test_fire_alarm_overrides_a_showing_denial(rig, population):
    r = rig(gate={"deny_light_s": 5})
    r.present("not a code")
    r.decisions()
    assert r.board.indicator.shown is Light.DENY
    r.model.fire_alarm(True)
    r.wait(lambda e: e["type"] == "mode" and e["mode"] == "emergency")
    assert r.board.indicator.shown is Light.EMERGENCY and r.board.turnstile.is_free


def test_kiosk_started_during_an_alarm_is_in_emergency(tmp_path, status_service):
    r = Rig(tmp_path, status_service.url)
    r.model.fire_alarm(True)
    try:
        r.start()
        r.wait(lambda e: e["type"] == "mode" and e["mode"] == "emergency")
        assert r.board.turnstile.is_free
    finally:
        r.stop()


def test_lockdown_denies_every_code_until_resume(rig, population):
    r = rig()
    assert r.command("lockdown") == (True, None)
    r.present(green_iin(population).sub[4:])
    assert r.decisions()[0]["reason"] == "lockdown"
    assert r.board.indicator.shown is Light.LOCKED
    r.command("resume")
    r.wait(lambda e: e["type"] == "mode" and e["mode"] == "normal")


def test_outside_opening_hours_is_closed(tmp_path, status_service, population):
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    other_day = days[(time.gmtime().tm_wday + 3) % 7]
    hours = f'[[policy.hours]]\ndays = ["{other_day}"]\nopen = "00:00"\nclose = "24:00"\n'
    r = Rig(tmp_path, status_service.url, extra_toml=hours)
    try:
        r.start()
        assert r.controller.mode == "closed"
        r.present(green_iin(population).sub[4:])
        assert r.decisions()[0]["reason"] == "closed"
        assert r.board.indicator.shown is Light.LOCKED
        assert not r.board.turnstile.is_free
    finally:
        r.stop()


def test_stop_releases_the_relay_even_mid_admission(rig, population, issuer):
    r = rig(gate={"unlock_s": 30})
    r.model.expect_walk_away()
    r.present(green_pass(population, issuer))
    r.decisions()
    assert r.board.turnstile.is_free
    from kiosk.gate.inputs import Stop

    r.controller.emit(Stop())
    r.thread.join(10)
    assert r.relay_levels()[-1] == 0


# -- indicators -------------------------------------------------------------------------------


def test_deny_shows_red_then_idle(gate):
    g = gate()
    g.present("not a code")
    assert g.of("decision")[0]["reason"] == "invalid_payload"
    assert g.board.indicator.shown is Light.DENY
    g.advance(FAST_GATE["deny_light_s"] - 0.01)
    assert g.board.indicator.shown is Light.DENY
    g.advance(0.01)
    assert g.board.indicator.shown is Light.IDLE


def test_refer_shows_amber_with_two_beeps_and_the_offline_idle(rig, population, status_service):
    status_service.faults.set(down=True)
    r = rig(status={"deadline_ms": 200}, gate={"refer_light_s": 5})
    r.present(green_iin(population).sub[4:])
    d = r.decisions()[0]
    assert (d["decision"], d["reason"]) == ("refer", "backend_unavailable")
    assert r.board.indicator.shown is Light.REFER
    assert r.board.sounder.wait_done(10)
    buzzer = r.factory.sim_pin(r.cfg.gpio.buzzer)
    assert sum(1 for _, s in buzzer.states if s) == 2


def test_bad_input_never_stops_the_loop(rig, population, issuer):
    r = rig()
    for junk in (b"\xff\xfe", b"x" * 5000, b"", b"a.b.c", "é".encode()):
        r.present(junk)
    reasons = {d["reason"] for d in r.decisions(4)}
    assert reasons == {"invalid_payload"}
    r.model.expect_walk(0.05)
    r.present(green_pass(population, issuer))
    r.wait(lambda e: e["type"] == "passage")


# -- what the review asked for ----------------------------------------------------------------


def test_lockdown_during_an_open_window_relocks_and_annuls(rig, population, issuer):
    r = rig(gate={"unlock_s": 30})
    r.model.expect_walk_away()
    r.present(green_pass(population, issuer))
    r.decisions()
    assert r.board.turnstile.is_free
    r.command("lockdown")
    [annulled] = r.wait(lambda e: e["type"] == "passage_timeout")
    assert annulled["cause"] == "lockdown"
    assert not r.board.turnstile.is_free


def test_open_once_is_refused_in_emergency_lockdown_and_while_busy(rig, population, issuer):
    r = rig(gate={"unlock_s": 30})
    r.model.expect_walk_away()
    r.present(green_pass(population, issuer))
    r.decisions()
    assert r.command("open_once") == (False, "busy")
    r.command("lockdown")
    assert r.command("open_once") == (False, "lockdown")
    r.command("resume")
    r.model.fire_alarm(True)
    r.wait(lambda e: e["type"] == "mode" and e["mode"] == "emergency")
    assert r.command("open_once") == (False, "emergency")
    refused = [e for e in r.events if e["type"] == "command" and not e["ok"]]
    assert [e["error"] for e in refused] == ["busy", "lockdown", "emergency"]


def test_a_broken_light_does_not_keep_the_turnstile_free(rig, population, issuer, monkeypatch):
    from kiosk.errors import DeviceError

    r = rig()

    def broken(light):
        raise DeviceError("LED driver gone")

    monkeypatch.setattr(r.board.indicator, "show", broken)
    r.model.expect_walk_away()
    r.present(green_pass(population, issuer))
    assert r.decisions()[0]["decision"] == "admit"
    r.wait(lambda e: e["type"] == "passage_timeout")
    assert not r.board.turnstile.is_free


def test_a_failing_store_does_not_cancel_the_fire_alarm(rig, monkeypatch):
    from kiosk.errors import StoreError

    r = rig()

    def full(*args, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(r.store, "record", full)
    r.model.fire_alarm(True)
    deadline = time.monotonic() + 10
    while not r.board.turnstile.is_free and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.board.turnstile.is_free and r.controller.mode == "emergency"


def test_fail_safe_site(rig, population, issuer):
    """On a fail-safe site a released relay means free: locked is the energised state."""
    r = rig(gate={"fail_safe": True, "unlock_s": 30})
    assert not r.board.turnstile.is_free
    assert r.relay_levels() == [0, 1]  # released at start, energised to lock
    r.model.expect_walk(0.05)
    r.present(green_pass(population, issuer))
    r.wait(lambda e: e["type"] == "passage")
    r.model.wait_for("relay_locked")
    assert r.relay_levels() == [0, 1, 0, 1]
    from kiosk.gate.inputs import Stop

    r.controller.emit(Stop())
    r.thread.join(10)
    assert r.relay_levels()[-1] == 0  # released at stop, whatever the site


def test_a_code_that_stays_in_view_is_decided_again_after_the_cooldown(gate):
    g = gate(gate={"cooldown_s": 0.5, "left_view_s": 1.0})
    for _ in range(26):  # 1.3 s of frames, 50 ms apart
        g.present("still in view", Source.CAMERA)
        g.advance(0.05)
    got = g.of("decision")
    assert 2 <= len(got) <= 3


def test_hard_anti_passback_at_the_gate(rig, population, issuer):
    r = rig(policy={"anti_passback": "hard", "anti_passback_s": 60})
    p = green_iin(population)
    r.model.expect_walk(0.05)
    r.present(p.sub[4:])
    r.wait(lambda e: e["type"] == "passage")
    r.present(issuer.mint(p.sub, "green"))  # the same person, another code
    assert r.decisions(2)[1]["reason"] == "anti_passback"


def test_admit_shows_green_with_one_short_beep(rig, population, issuer):
    r = rig(gate={"unlock_s": 30})
    r.model.expect_walk_away()
    r.present(green_pass(population, issuer))
    r.decisions()
    assert r.board.indicator.shown is Light.ADMIT
    assert r.board.sounder.wait_done(10)
    buzzer = r.factory.sim_pin(r.cfg.gpio.buzzer)
    assert sum(1 for _, s in buzzer.states if s) == 1


def test_offline_idle_after_a_refer(gate, population, status_service):
    status_service.faults.set(down=True)
    g = gate(status={"deadline_ms": 200}, gate={"refer_light_s": 0.2})
    g.present(green_iin(population).sub[4:])
    assert g.of("decision")
    g.advance(0.2)
    assert g.board.indicator.shown is Light.IDLE_OFFLINE


def test_a_second_beam_break_right_after_a_passage_is_not_forced(gate, population, issuer):
    g = gate()
    g.present(green_pass(population, issuer))
    g.passage()
    assert g.of("passage")
    g.advance(PASSAGE_HOLDOFF_S - 0.01)
    g.passage()  # the bag behind them
    assert "forced_passage" not in g.types()
    g.advance(0.02)
    g.passage()  # someone else, past the hold-off: forced
    assert g.of("forced_passage")


def test_replay_survives_a_restart(tmp_path, status_service, population, issuer):
    text = green_pass(population, issuer)
    first = Rig(tmp_path, status_service.url).start()
    try:
        first.model.expect_walk(0.05)
        first.present(text)
        first.wait(lambda e: e["type"] == "passage")
    finally:
        first.stop()
    second = Rig(tmp_path, status_service.url).start()
    try:
        second.present(text)
        assert second.decisions()[0]["reason"] == "replayed"
    finally:
        second.stop()


def test_sd_card_care_only_the_event_store_is_written(tmp_path, status_service, population, issuer):
    """Many decisions, bad codes among them: the state folder holds the event store and
    nothing per decision besides; the log stays short."""
    import logging

    r = Rig(tmp_path, status_service.url).start()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        for i in range(300):
            r.present(f"garbage {i}".encode() + bytes([i % 256]))
        r.model.expect_walk(0.05)
        r.present(green_pass(population, issuer))
        r.wait(lambda e: e["type"] == "passage")
        r.decisions(301)
    finally:
        logging.getLogger().removeHandler(handler)
        r.stop()
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert files == ["events.sqlite", "events.sqlite-shm", "events.sqlite-wal"] or files == [
        "events.sqlite"
    ], files
    assert len(records) < 10


def test_a_lookup_that_never_returns_still_ends_in_a_decision(tmp_path, status_service, population):
    """A transport without a deadline of its own (a hanging DNS lookup, say)."""
    import threading as _threading

    class Hanging:
        def __init__(self) -> None:
            self.release = _threading.Event()

        def lookup(self, subject, *, deadline_s):
            self.release.wait(30)
            raise TimeoutError

        def close(self) -> None:
            self.release.set()

    r = Rig(tmp_path, status_service.url, status={"deadline_ms": 200})
    hanging = Hanging()
    r.core.checker._lookup = hanging  # the transport boundary, swapped for a hanging one
    r.controller._lookups.timeout_s = 0.5  # the controller's own guard
    try:
        r.start()
        r.present(green_iin(population).sub[4:])
        d = r.decisions()[0]
        assert (d["decision"], d["reason"]) == ("refer", "backend_unavailable")
        r.present("still deciding")  # the gate is not stuck behind the hanging lookup
        assert r.decisions(2)[1]["reason"] == "invalid_payload"
    finally:
        hanging.release.set()
        r.stop()


# -- the observable gate (kiosk/gate/view.py), on the fake clock --------------------------------


def test_the_view_follows_the_gate_and_shows_the_holder_masked_never_the_subject(
    gate, population, issuer
):
    g = gate(policy={"capacity": 10})
    start = g.view.snapshot()
    assert (start.mode, start.turnstile, start.light, start.occupancy) == (
        "normal",
        "locked",
        "idle",
        0,
    )
    assert start.capacity == 10 and start.kiosk_version
    g.present(green_pass(population, issuer))
    snap = g.view.snapshot()
    [decision] = g.of("decision")
    assert (snap.turnstile, snap.light, snap.sound) == ("free", "admit", "short")
    last = snap.last_decision
    assert last is not None and (last.decision, last.reason, last.source) == (
        "admit",
        "admitted",
        "scanner",
    )
    assert last.seq == decision["seq"] and last.holder_masked and "*" in last.holder_masked
    assert decision["subject"] not in repr(snap)
    g.passage()
    after = g.view.snapshot()
    assert (after.turnstile, after.occupancy, after.light) == ("locked", 1, "idle")
    assert after.version > snap.version > start.version
    assert [e["type"] for e in g.view.recent()] == g.types()  # every record, in order


def test_the_view_shows_modes_devices_and_the_status_service(gate, population, status_service):
    from kiosk.gate.inputs import DeviceStatus, FireAlarmInput

    status_service.faults.set(down=True)
    g = gate(status={"deadline_ms": 200})
    g.handle(DeviceStatus("camera", False, "unplugged"))
    g.present(green_iin(population).sub[4:])
    snap = g.view.snapshot()
    assert snap.health["camera"] == "down" and snap.health["status"] == "down"
    assert snap.health["disk"] == "ok" and snap.offline
    g.handle(DeviceStatus("camera", True, "back"))
    g.handle(FireAlarmInput(True, g.clock.monotonic()))
    snap = g.view.snapshot()
    assert snap.health["camera"] == "ok"
    assert (snap.mode, snap.turnstile, snap.light) == ("emergency", "free", "emergency")


def test_a_refused_remote_command_is_recorded_by_the_controller(gate):
    from kiosk.gate.inputs import CommandRefused

    g = gate()
    g.handle(CommandRefused("bad_signature"))
    g.handle(CommandRefused("replayed", cmd="lockdown", jti="j-1"))
    refused = [{k: e[k] for k in ("cmd", "jti", "origin", "ok", "error")} for e in g.of("command")]
    assert refused == [
        {"cmd": None, "jti": None, "origin": "mqtt", "ok": False, "error": "bad_signature"},
        {"cmd": "lockdown", "jti": "j-1", "origin": "mqtt", "ok": False, "error": "replayed"},
    ]
    assert g.view.snapshot().mode == "normal"  # refused: nothing changed


def test_a_failing_store_shows_as_disk_down(gate, monkeypatch):
    from kiosk.errors import StoreError
    from kiosk.gate.inputs import FireAlarmInput

    g = gate()

    def full(*args, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(g.kiosk.store, "record", full)
    g.handle(FireAlarmInput(True, g.clock.monotonic()))
    snap = g.view.snapshot()
    assert snap.health["disk"] == "down" and snap.mode == "emergency"
