"""The --pretty line of `kiosk sim`: words from the display's catalogue, no subject or code."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta, timezone

from simulators.pretty import GateLook, decision_line, event_line, local_time
from support import REPO

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


def test_see_staff_reasons_say_so() -> None:
    event = dict(DECISION, decision="refer", reason="backend_unavailable", via="none")
    line = decision_line(event, tz=ALMATY)
    assert "REFER" in line and "Service unavailable (see staff)" in line


def test_a_status_not_from_the_service_says_where_from() -> None:
    offline = dict(DECISION, decision="admit", reason="admitted", st="green", via="pass")
    assert "status from the pass (offline)" in decision_line(offline)
    assert "from cache" in decision_line(dict(offline, via="cache"))
    assert "from" not in decision_line(DECISION)  # online: the usual case, not said


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


def test_an_operator_command_gets_a_line() -> None:
    cmd = {"type": "command", "ts": "2026-12-01T09:00:00Z", "cmd": "lockdown", "ok": True}
    line = event_line(cmd | {"origin": "console", "account": "alice"}, tz=ALMATY)
    assert line == "14:00:00  CMD     lockdown from console (alice): ok"
    refused = event_line(cmd | {"origin": "mqtt", "ok": False, "error": "replayed"})
    assert refused is not None and refused.endswith("from mqtt: refused (replayed)")


def test_a_bad_timestamp_is_shown_as_it_came() -> None:
    assert local_time("yesterday") == "yesterday"


def _sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kiosk_sim_pretty_prints_a_line_per_decision_with_the_step_note() -> None:
    scenario = REPO / "simulators" / "scenarios" / "fault-drill.toml"
    out = _sim("--scenario", str(scenario), "--count", "2", "--pretty")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2  # two decisions; the start's mode record changes no mode
    assert "ADMIT" in lines[0] and "Entry allowed" in lines[0] and "a normal morning" in lines[0]
    assert "DENY" in lines[1] and "Your status does not allow entry" in lines[1]


def test_kiosk_sim_writes_json_when_not_on_a_terminal() -> None:
    out = _sim("--count", "1", "--rate", "0")
    assert out.returncode == 0, out.stderr
    assert all(json.loads(line)["type"] for line in out.stdout.splitlines())
