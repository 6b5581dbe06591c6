"""Nothing outside the gate package reaches into the controller (DEVELOPERS.md principle 2):
it is handed inputs (``emit``) and read through its view (``kiosk/gate/view.py``)."""

from __future__ import annotations

import re

from support import REPO

# The controller's parts that only the gate package may touch (the view shows them).
REACH_IN = re.compile(r"\bcontroller\.(state\(|occupancy\b|devices\b|mode\b|_\w+)")
# The journal's class or module, named in the gate package (it hears the view instead).
JOURNAL = re.compile(r"\bGateJournal\b|kiosk\.journal\b|\bjournal\.\w+\(|\b_journal\b")


def test_only_the_gate_package_reaches_into_the_controller():
    offenders = []
    for folder in ("kiosk", "drivers", "simulators", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("kiosk/gate/"):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if REACH_IN.search(line):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_the_old_controller_module_is_gone():
    assert not (REPO / "kiosk" / "controller.py").exists()


def test_the_gate_package_knows_no_journal():
    """The controller tells the view (notes); the journal is one of the view's observers,
    subscribed by the composition root (kiosk/assembly.py)."""
    offenders = []
    for path in sorted((REPO / "kiosk" / "gate").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if JOURNAL.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
    assembly = (REPO / "kiosk" / "assembly.py").read_text()
    assert "view.subscribe(GateJournal(" in assembly


def test_the_journal_does_not_reach_into_the_controller():
    journal = (REPO / "kiosk" / "journal.py").read_text()
    assert "kiosk.gate.controller" not in journal and "GateController" not in journal
