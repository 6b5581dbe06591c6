"""The service unit: systemd accepts it, its sandbox scores OK, and it says what the kiosk needs.

`systemd-analyze verify` and `security --offline=yes` work on a machine that is not booted
with systemd (both only read unit files); they are skipped where systemd-analyze is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kiosk.cli import EX_CONFIG
from kiosk.notify import Notifier
from support import REPO

UNIT = REPO / "systemd" / "ashyq-kiosk.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")

MAX_EXPOSURE = 2.0
# What the sandbox deliberately leaves open, as systemd-analyze names it. Each one is
# explained in the unit (the hardware, the network, gpiozero's board detection); anything
# else showing up means a hardening setting was lost.
ACCEPTED_EXPOSURES = {
    "RootDirectory=/RootImage=",
    "SupplementaryGroups=",
    "PrivateDevices=",
    "DeviceAllow=",
    "PrivateNetwork=",
    "IPAddressDeny=",
    "RestrictAddressFamilies=~AF_UNIX",
    "RestrictAddressFamilies=~AF_(INET|INET6)",
    "PrivateUsers=",
    "ProcSubset=",
}
# Settings left out for a reason the unit must give in a comment.
EXPLAINED = [
    "PrivateDevices=",
    "PrivateNetwork=",
    "IPAddressDeny=",
    "ProcSubset=",
    "PrivateUsers=",
    "RootDirectory=",
    "AF_NETLINK",
    "MemoryDenyWriteExecute=",
    "SystemCallErrorNumber=",
]


def settings(text: str) -> dict[str, dict[str, list[str]]]:
    """The unit as {section: {key: [values in order]}} (keys may repeat, unlike INI)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return settings(UNIT.read_text())


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= missing"
    assert len(values) == 1, f"[{section}] {key}= given {len(values)} times"
    return values[0]


def test_type_notify_with_the_watchdog_the_daemon_feeds(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    watchdog_s = int(one(unit, "Service", "WatchdogSec"))
    assert watchdog_s == 10
    # What the daemon will read from the environment systemd gives it: pings every half.
    seen = Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": str(watchdog_s * 1_000_000)})
    assert seen.watchdog_s == watchdog_s
    assert int(one(unit, "Service", "TimeoutStartSec")) >= 30


def test_runs_the_daemon_and_releases_the_relay_after_every_exit(unit):
    config = "--config /etc/ashyq-kiosk/kiosk.toml"
    assert one(unit, "Service", "ExecStart") == f"/opt/ashyq-kiosk/venv/bin/kiosk run {config}"
    # No "-" prefix: a failed release must show as a failed unit.
    assert one(unit, "Service", "ExecStopPost") == (
        f"/opt/ashyq-kiosk/venv/bin/kiosk release {config}"
    )


def test_reload_sends_sighup_to_the_daemon(unit):
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_restarts_a_failing_daemon_but_not_a_config_error_nor_in_a_tight_loop(unit):
    assert one(unit, "Service", "Restart") == "on-failure"
    assert str(EX_CONFIG) in one(unit, "Service", "RestartPreventExitStatus").split()
    restart_s = float(one(unit, "Service", "RestartSec"))
    interval_s = float(one(unit, "Unit", "StartLimitIntervalSec"))
    burst = int(one(unit, "Unit", "StartLimitBurst"))
    assert restart_s >= 2, "a tight restart loop"
    # Restart= alone can never reach the burst, so a flaky camera is retried until it is back.
    assert burst > interval_s / restart_s


def test_runs_as_its_own_user_with_the_device_groups(unit):
    assert one(unit, "Service", "User") == "ashyq-kiosk"
    assert one(unit, "Service", "Group") == "ashyq-kiosk"
    assert set(one(unit, "Service", "SupplementaryGroups").split()) == {"gpio", "video", "dialout"}
    assert one(unit, "Service", "StateDirectory") == "ashyq-kiosk"
    assert one(unit, "Service", "StateDirectoryMode") == "0750"
    assert one(unit, "Service", "ConfigurationDirectory") == "ashyq-kiosk"
    assert one(unit, "Service", "UMask") == "0077"


def test_environment_and_journal(unit):
    env = " ".join(unit["Service"]["Environment"]).split()
    assert {"OPENCV_LOG_LEVEL=ERROR", "PYTHONUNBUFFERED=1"} <= set(env)
    assert one(unit, "Service", "StandardOutput") == "journal"


def test_sandbox_essentials(unit):
    s = unit["Service"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["DevicePolicy"] == ["closed"]
    allowed = {v.split()[0] for v in s["DeviceAllow"]}
    assert {"char-gpiochip", "char-video4linux", "char-ttyACM", "char-ttyUSB"} <= allowed
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert s["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "MemoryDenyWriteExecute"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]


def test_every_setting_left_out_is_explained():
    comments = "\n".join(
        line for line in UNIT.read_text().splitlines() if line.lstrip().startswith("#")
    )
    missing = [word for word in EXPLAINED if word not in comments]
    assert missing == []


@needs_analyze
def test_systemd_accepts_the_unit(tmp_path: Path):
    # verify checks that the commands exist; the venv is not installed here, so point the
    # copy at a real binary and keep everything else (the sandbox, devices, limits) as is.
    true = shutil.which("true")
    assert true is not None
    text = UNIT.read_text().replace("/opt/ashyq-kiosk/venv/bin/kiosk", true)
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    done = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_analyze
def test_verify_would_catch_a_missing_program(tmp_path: Path):
    # The check above is meaningful: the same verify flags the real, not yet installed path.
    done = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "/opt/ashyq-kiosk/venv/bin/kiosk" in done.stderr


@needs_analyze
def test_security_exposure_is_ok():
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert found, done.stdout
    exposure, verdict = float(found[1]), found[2]
    assert exposure <= MAX_EXPOSURE, done.stdout
    assert verdict in ("OK", "SAFE", "PERFECT")
    # Rows marked ✗ that carry a weight: only the deliberate ones.
    open_rows = {
        m[1] for m in re.finditer(r"^✗ (\S+)\s.*\s\d+\.\d+$", done.stdout, flags=re.MULTILINE)
    }
    assert open_rows == ACCEPTED_EXPOSURES, done.stdout
