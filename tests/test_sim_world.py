"""`kiosk sim` without a scenario: a steady crowd at the real daemon, one JSON line per event."""

from __future__ import annotations

import json
import subprocess
import sys

from kiosk.reasons import Reason
from simulators.population import load


def test_sim_prints_events_and_a_summary():
    out = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", "--count", "8", "--rate", "0", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [json.loads(line) for line in out.stdout.splitlines()]
    decisions = [e for e in events if e["type"] == "decision"]
    assert len(decisions) == 8
    assert events[0]["type"] == "mode"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(d["reason"] in set(Reason) for d in decisions)
    assert {d["source"] for d in decisions} <= {"camera", "scanner"}
    assert "8 decisions" in out.stderr
    # Privacy: no ID of the test population anywhere in what the simulation prints.
    printed = out.stdout + out.stderr
    ids = {p.sub.split(":")[-1] for p in load().people}
    assert not [i for i in ids if i in printed]
