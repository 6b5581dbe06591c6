"""The --pretty line of `kiosk sim`: words from the display's catalogue, no subject or code."""

from __future__ import annotations

from datetime import timedelta, timezone

from simulators.pretty import GateLook, decision_line, event_line, local_time

ALMATY = timezone(timedelta(hours=5))
DECISION = {
    "type": "decision",
    "ts": "2026-12-01T09:02:11.123Z",
    "decision": "deny",
    "reason": "status_not_allowed",
    "st": "red",
    "via": "online",
    "source": "scanner",
    "subject": "45373fcb40470a6848e8",
    "latency_ms": 12.34,
}


def test_a_decision_reads_as_words_in_local_time() -> None:
    line = decision_line(
        DECISION,
        gate=GateLook("locked", "deny", 3, 40),
        note="a red visitor",
        tz=ALMATY,
    )
    assert line.startswith("14:02:11  DENY  ")
    assert "Your status does not allow entry" in line
    assert "scanner" in line and "12.3 ms" in line
    assert "relay locked, light deny" in line and "inside 3/40" in line
    assert line.endswith("a red visitor")


def test_the_line_never_carries_the_pseudonym() -> None:
    assert DECISION["subject"] not in decision_line(DECISION)


def test_see_staff_reasons_say_so_and_offline_is_named() -> None:
    event = dict(DECISION, decision="refer", reason="backend_unavailable", via="offline")
    line = decision_line(event, tz=ALMATY)
    assert "REFER" in line and "Service unavailable (see staff)" in line and "offline" in line


def test_admit_names_the_status_and_colour_is_optional() -> None:
    event = dict(DECISION, decision="admit", reason="admitted", st="green")
    assert "Entry allowed (green)" in decision_line(event)
    coloured = decision_line(event, colour=True)
    assert "\033[32m" in coloured and "ADMIT" in coloured
    assert "\033[" not in decision_line(event)


def test_an_unknown_reason_shows_as_itself() -> None:
    future = dict(DECISION, reason="reason_from_the_future")
    assert "reason_from_the_future" in decision_line(future)


def test_mode_changes_get_a_line_other_records_none() -> None:
    mode = {"type": "mode", "ts": "2026-12-01T09:00:00Z", "mode": "emergency"}
    mode |= {"previous": "normal", "cause": "fire_alarm"}
    line = event_line(mode, tz=ALMATY)
    assert line is not None and "MODE" in line and "emergency (fire_alarm)" in line
    assert event_line(dict(mode, previous="emergency")) is None  # a restart in the same mode
    assert event_line({"type": "passage", "ts": "2026-12-01T09:00:00Z"}) is None


def test_a_bad_timestamp_is_shown_as_it_came() -> None:
    assert local_time("yesterday") == "yesterday"
