"""The core never imports a hardware library, nor the drivers or simulators (DEVELOPERS.md)."""

from __future__ import annotations

import ast

from support import REPO

HARDWARE = {
    "cv2",
    "gpiozero",
    "serial",
    "zxingcpp",
    "pyzbar",
    "picamera2",
    "lgpio",
    "RPi",
    "numpy",
    "drivers",
    "simulators",
}
# The wiring module and the command line put the pieces together, so they may.
ALLOWED = {"kiosk/cli.py", "kiosk/wiring.py", "kiosk/release.py", "kiosk/doctor/hardware.py"}


def imported_roots(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_core_imports_no_hardware_library():
    offenders = {}
    for path in sorted((REPO / "kiosk").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in ALLOWED:
            continue
        bad = HARDWARE.intersection(imported_roots(path))
        if bad:
            offenders[rel] = sorted(bad)
    assert offenders == {}


def test_only_the_command_line_names_the_simulators():
    # The production commands must not carry the simulated world: kiosk/cli.py loads a
    # simulator command's module only when that command runs (tests/test_cli_imports.py
    # checks what each command loads; this checks every other module of the core).
    naming = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "kiosk").rglob("*.py")
        if "simulators" in imported_roots(path)
    }
    assert naming <= {"kiosk/cli.py"}
