"""What each `kiosk` command imports: the production commands never the simulated world,
the one-shot core tools no hardware library, and `kiosk release` (the unit's ExecStopPost)
only the configuration and the relay driver.

Each command runs in its own interpreter, for real where that is harmless (a mock relay, a
configuration with no status service), so the import closure is the command's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli import PRODUCTION_COMMANDS, SIMULATOR_COMMANDS, build_parser
from support import REPO, write_config

# Runs `kiosk.cli.main(argv)` and prints its exit code and every module it loaded.
SCRIPT = """
import contextlib, io, json, sys
{prelude}
import kiosk.cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = kiosk.cli.main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""

HARDWARE = ("gpiozero", "cv2", "zxingcpp", "pyzbar", "serial", "lgpio", "picamera2")
#: Commands that need the core alone: no device is touched, so no hardware library loads.
CORE_ONLY = {"check", "config", "report"}
#: A harmless invocation of every production command, and the exit status it gives.
#: {config} is a configuration with mock pins, simulated devices and no status service.
INVOCATIONS: dict[str, tuple[list[str], int]] = {
    "run": (["run", "--config", "{missing}"], 78),  # loads the daemon, stops at the file
    "release": (["release", "--config", "{config}"], 0),  # a mock relay released
    "check": (["check", "--config", "{config}", "not-a-code"], 1),  # denied, offline
    "decode": (["decode", "{missing}"], 1),  # loads the decoders, finds no image
    "config": (["config", "check", "{config}"], 0),
    "doctor": (["doctor", "--config", "{config}"], 0),
    "report": (["report", "--config", "{config}", "--json"], 2),  # loads it all, finds no store
    "passwd": (["passwd", "nobody", "--remove", "--config", "{missing}"], 2),  # no such file
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("cli-imports")
    config = write_config(
        tmp,
        camera={"enabled": True, "url": "sim:", "width": 320, "height": 240},
        scanner={"enabled": True, "url": "sim:"},
        gpio={"pin_factory": "mock"},
    )
    return {"config": str(config), "missing": str(tmp / "missing.toml")}


def run_kiosk(argv: list[str], *, prelude: str = "") -> dict[str, Any]:
    """Run ``kiosk argv`` in a fresh interpreter: its exit code and loaded modules."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(prelude=prelude), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def under(modules: list[str], *roots: str) -> list[str]:
    return [m for m in modules if m.split(".")[0] in roots]


def test_every_production_command_has_an_invocation_here() -> None:
    missing = {c.name for c in PRODUCTION_COMMANDS} - set(INVOCATIONS)
    assert not missing, f"add a harmless invocation of `kiosk {missing}` to INVOCATIONS"


@pytest.mark.parametrize("name", sorted(INVOCATIONS))
def test_production_commands_import_no_simulator(name: str, paths: dict[str, str]) -> None:
    template, expected = INVOCATIONS[name]
    ran = run_kiosk([arg.format(**paths) for arg in template])
    assert ran["code"] == expected, "the command did not run as this test expects"
    assert under(ran["modules"], "simulators") == []
    if name in CORE_ONLY:
        assert under(ran["modules"], *HARDWARE) == []


def test_release_takes_the_shortest_path(paths: dict[str, str]) -> None:
    ran = run_kiosk(["release", "--config", paths["config"]])
    assert ran["code"] == 0
    modules = ran["modules"]
    assert under(modules, "cv2", "zxingcpp", "pyzbar", "serial", "paho", "urllib3") == []
    assert "drivers.relay" in modules and "gpiozero" in modules  # it did release the relay
    # The relay driver alone: not the other GPIO devices, nor the kiosk's machinery.
    heavy = ("drivers.gpio", "kiosk.core", "kiosk.daemon", "kiosk.doctor", "kiosk.wiring")
    assert [m for m in heavy if m in modules] == []


def test_release_works_when_the_simulators_cannot_be_imported(paths: dict[str, str]) -> None:
    # A None entry in sys.modules makes every `import simulators...` raise ImportError.
    broken = "sys.modules['simulators'] = None"
    assert run_kiosk(["release", "--config", paths["config"]], prelude=broken)["code"] == 0
    assert run_kiosk(["--help"], prelude=broken)["code"] == 0


def test_the_command_list_imports_no_command() -> None:
    ran = run_kiosk(["--help"])
    assert ran["code"] == 0
    assert under(ran["modules"], "simulators", "drivers", *HARDWARE) == []
    assert "kiosk.config" not in ran["modules"]


def test_simulator_commands_are_still_kiosk_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "mint", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: kiosk mint" in proc.stdout and "--person" in proc.stdout
    assert "Mint a signed status pass" in proc.stdout  # its description, added lazily
    ran = run_kiosk(["mint", "--person", "0"])
    assert ran["code"] == 0 and "simulators.issuer" in ran["modules"]


def test_kiosk_lists_exactly_the_simulator_commands() -> None:
    from simulators.cli import NAMES

    assert tuple(c.name for c in SIMULATOR_COMMANDS) == NAMES
    production = {c.name for c in PRODUCTION_COMMANDS}
    assert production.isdisjoint(NAMES)


def test_the_full_parser_knows_every_command(tmp_path: Path) -> None:
    # build_parser() with no argument adds every command's arguments (tests use it).
    args = build_parser().parse_args(["sim", "--count", "1", "--seed", "3"])
    assert (args.command, args.count, args.seed) == ("sim", 1, 3)
    args = build_parser().parse_args(["release", "--config", str(tmp_path / "k.toml")])
    assert args.func.__module__ == "kiosk.release"
