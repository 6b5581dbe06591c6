"""`kiosk sim` plays a crowd against the real core and prints one JSON line per decision."""

from __future__ import annotations

import json
import subprocess
import sys

from kiosk.reasons import Reason
from simulators.population import load


def test_sim_prints_decisions_and_a_summary():
    out = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", "--count", "40", "--rate", "0", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 40
    assert {line["decision"] for line in lines} >= {"admit", "deny"}
    assert all(line["reason"] in set(Reason) for line in lines)
    assert "40 people" in out.stderr
    # Privacy: no ID of the test population anywhere in what the simulation prints.
    printed = out.stdout + out.stderr
    ids = {p.sub.split(":")[-1] for p in load().people}
    assert not [i for i in ids if i in printed]
