"""End to end: `kiosk sim --scenario` runs the real daemon and drivers in the simulated world.

Each scenario gives the same decisions and reasons on every run; these are the sequences.
"""

from __future__ import annotations

import json
import subprocess
import sys

from support import REPO

SCENARIOS = REPO / "simulators" / "scenarios"
ADMIT = ("admit", "admitted")
NOT_ALLOWED = ("deny", "status_not_allowed")
OFFLINE = ("refer", "backend_unavailable")
EMERGENCY = ("refer", "emergency")


def sim(*args: str) -> tuple[list[dict], str]:
    run = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines()], run.stderr


def decisions(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["decision"], e["reason"]) for e in events if e["type"] == "decision"]


def test_fault_drill():
    events, err = sim("--scenario", str(SCENARIOS / "fault-drill.toml"), "--speed", "3")
    assert decisions(events) == [
        ADMIT,
        NOT_ALLOWED,
        ("deny", "bad_signature"),
        ("deny", "invalid_payload"),
        OFFLINE,  # bare IIN, service down
        ADMIT,  # fresh pass, offline rule "pass"
        OFFLINE,  # pass older than max_pass_age_s
        OFFLINE,  # service slower than the deadline
        ADMIT,  # by scanner while the camera is unplugged
        ADMIT,  # camera back
        ADMIT,  # scanner replugged; walks away
        EMERGENCY,
        EMERGENCY,  # latched after the contact closed
        ("deny", "lockdown"),
        ADMIT,
    ]
    types = [e["type"] for e in events]
    assert types.count("passage_timeout") == 1 and types.count("forced_passage") == 1
    modes = [e["mode"] for e in events if e["type"] == "mode"]
    assert modes == ["normal", "emergency", "normal", "lockdown", "normal"]
    assert [e["input"] for e in events if e["type"] == "alarm"] == ["open", "closed"]
    assert "15 decisions" in err


def test_gym_evening():
    events, _ = sim("--scenario", str(SCENARIOS / "gym-evening.toml"), "--speed", "4")
    got = decisions(events)
    assert got[:6] == [ADMIT, ADMIT, NOT_ALLOWED, ADMIT, ADMIT, ("deny", "expired")]
    assert got == [
        *got[:6],
        ADMIT, ADMIT, ADMIT, ADMIT, NOT_ALLOWED, ADMIT, ADMIT, ADMIT, ADMIT, NOT_ALLOWED,
        ADMIT, ADMIT, ADMIT, ADMIT, ADMIT, ADMIT, ADMIT, ADMIT, ADMIT, ADMIT,
    ]  # fmt: skip
    repeat = [e for e in events if e["type"] == "decision"][4]
    assert repeat.get("anti_passback") is True  # soft: admitted and recorded
    exits = [e for e in events if e.get("direction") == "exit"]
    assert len(exits) == 1


def test_airport_rush_is_deterministic_and_privacy_safe():
    events, _ = sim(
        "--scenario", str(SCENARIOS / "airport-rush.toml"), "--count", "30", "--speed", "5"
    )
    got = decisions(events)
    denied = [i for i, d in enumerate(got) if d != ADMIT]
    assert len(got) == 30
    assert denied == [1, 15, 23] and all(got[i] == NOT_ALLOWED for i in denied)
    assert all(e["via"] == "online" for e in events if e["type"] == "decision")
    printed = json.dumps(events)
    assert "iin:" not in printed and "passport:" not in printed
