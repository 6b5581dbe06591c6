"""kiosk/gate/records.py: each typed record's body is exactly the event of mqtt.md."""

from __future__ import annotations

from kiosk.decision import Verdict
from kiosk.gate.records import (
    AlarmRecord,
    CommandRecord,
    DecisionRecord,
    ForcedPassageRecord,
    ModeRecord,
    PassageRecord,
    PassageTimeoutRecord,
    StoreRecorder,
)
from kiosk.gate.window import Admission
from kiosk.reasons import Decision, Reason, Source, Via
from kiosk.replay import jti_key


def test_a_decision_carries_anti_passback_only_when_it_applies():
    v = Verdict(Decision.ADMIT, Reason.ADMITTED, st="green", via=Via.ONLINE, subject="ps-1")
    rec = DecisionRecord.of(v, Source.CAMERA, 12.5)
    assert (rec.type, rec.fields()) == (
        "decision",
        {
            "decision": "admit",
            "reason": "admitted",
            "st": "green",
            "via": "online",
            "source": "camera",
            "subject": "ps-1",
            "latency_ms": 12.5,
        },
    )
    soft = DecisionRecord("admit", "anti_passback", "green", "online", "scanner", "ps", 1.0, True)
    assert soft.fields()["anti_passback"] is True


def test_the_decision_shown_has_the_masked_holder_and_never_the_subject():
    rec = DecisionRecord("admit", "admitted", "green", "online", "scanner", "ps-1", 3.0)
    shown = rec.shown(1_700_000_000.0, "12********34", {"seq": 9})
    assert (shown.holder_masked, shown.seq, shown.latency_ms) == ("12********34", 9, 3.0)
    assert "ps-1" not in repr(shown)


def test_passages_leave_out_what_does_not_apply():
    assert PassageRecord("exit", occupancy=3).fields() == {
        "direction": "exit",
        "subject": None,
        "occupancy": 3,
    }
    assert PassageRecord("entry", cause="emergency").fields() == {
        "direction": "entry",
        "subject": None,
        "cause": "emergency",
    }
    admitted = Admission(1, "ps-1", "jti-1", 1_700_000_300, "decision")
    assert PassageRecord.entry(admitted, 4).fields() == {
        "direction": "entry",
        "subject": "ps-1",
        "cause": "decision",
        "occupancy": 4,
        "pass_ref": jti_key("jti-1"),
        "pass_exp": 1_700_000_300,
    }
    once = Admission(2, None, None, None, "open_once")
    assert PassageRecord.entry(once, 5).fields() == {
        "direction": "entry",
        "subject": None,
        "cause": "open_once",
        "occupancy": 5,
    }


def test_the_other_records_have_mqtt_md_fields():
    assert PassageTimeoutRecord("ps-1", "decision").fields() == {
        "subject": "ps-1",
        "cause": "decision",
    }
    assert ForcedPassageRecord(2).fields() == {"subject": None, "occupancy": 2}
    assert AlarmRecord(True).fields() == {"alarm": "fire", "input": "open"}
    assert AlarmRecord(False).fields() == {"alarm": "fire", "input": "closed"}
    assert ModeRecord("lockdown", "normal", "lockdown", 7).fields() == {
        "mode": "lockdown",
        "previous": "normal",
        "cause": "lockdown",
        "occupancy": 7,
    }
    assert CommandRecord("resume", "j1", "mqtt", False, "fire_alarm_active").fields() == {
        "cmd": "resume",
        "jti": "j1",
        "origin": "mqtt",
        "via": "mqtt",
        "ok": False,
        "error": "fire_alarm_active",
    }
    by_console = CommandRecord("open_once", None, "console", True, None, account="tech")
    assert by_console.fields()["via"] == "console" and by_console.fields()["account"] == "tech"
    reset = CommandRecord("reset_occupancy", None, "local", True, None, occupancy=0)
    assert reset.fields()["occupancy"] == 0


def test_the_store_recorder_commits_then_wakes_the_outbox():
    calls: list[object] = []

    class Store:
        def record(self, type_, **fields):
            calls.append((type_, fields))
            return {"seq": 1, "type": type_, **fields}

    recorder = StoreRecorder(Store(), wake=lambda: calls.append("wake"))
    event = recorder.record(AlarmRecord(True))
    assert event == {"seq": 1, "type": "alarm", "alarm": "fire", "input": "open"}
    assert calls == [("alarm", {"alarm": "fire", "input": "open"}), "wake"]
