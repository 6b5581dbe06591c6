"""`kiosk doctor` at a simulated entrance: all OK, then one fault at a time, each failing
exactly the check it should with a fix that helps; the relay is never energised."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import load_config
from kiosk.core import LAST_GOOD_KEYS
from kiosk.doctor import cmd_doctor, local, run_doctor
from kiosk.doctor.local import CLOCK_HWM, DISK_FAIL_BELOW, DISK_WARN_BELOW, ClockSync
from kiosk.doctor.network import PROBE_SUBJECT
from mosquitto import Mosquitto, free_port
from simulators.population import Population
from simulators.world import World
from support import SIM_KEYS, TOKEN, write_config

RELAY = 17
REAL_KERNEL_CLOCK_SYNC = local.kernel_clock_sync  # before the autouse fixture replaces it
VENUE_SECRET = "test-venue-secret-0123456789"  # what support.write_config puts in
# Small frames: the doctor reads one, and rendering the simulated scene costs per pixel.
DEVICES: dict[str, dict[str, Any]] = {
    "camera": {"enabled": True, "url": "sim:", "width": 320, "height": 240},
    "scanner": {"enabled": True, "url": "sim:"},
    "gpio": {"pin_factory": "mock", "relay": RELAY},
}


class Entrance:
    """A simulated entrance (`World`) and a configuration file that points at it."""

    def __init__(self, tmp_path: Path, population: Population) -> None:
        self.tmp = tmp_path
        # The world is built from a loaded configuration (pins, token, camera size); its
        # status service's URL is known only afterwards, so the file is written twice.
        cfg = load_config(write_config(tmp_path, "http://127.0.0.1:9", **DEVICES))
        self.world = World(cfg, population=population)
        self.relay_pin = self.world.pins.sim_pin(RELAY)

    def config(self, **sections: dict[str, Any]) -> Path:
        """Write the configuration (the devices above, ``sections`` on top) and return it."""
        merged = {name: dict(values) for name, values in DEVICES.items()}
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        return write_config(self.tmp, self.world.service.url, **merged)

    def doctor(self, **sections: dict[str, Any]) -> tuple[int, dict[str, dict[str, Any]], str]:
        """Run the doctor (JSON and table); the exit code, checks by name and the table."""
        path = str(self.config(**sections))
        out = io.StringIO()
        code = run_doctor(path, sim=self.world.hardware(), out=out, as_json=True)
        checks = {c["name"]: c for c in json.loads(out.getvalue())}
        table = io.StringIO()
        assert run_doctor(path, sim=self.world.hardware(), out=table) == code
        self.assert_relay_never_energised()
        return code, checks, table.getvalue()

    def assert_relay_never_energised(self) -> None:
        # Active-high relay: every level the pin ever had stays low, and the turnstile
        # model on the far side never saw the relay free.
        assert all(s.state < 0.5 for s in self.relay_pin.states)
        assert self.world.turnstile.count("relay_free") == 0

    def close(self) -> None:
        self.world.close()


@pytest.fixture(autouse=True)
def ntp_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's sync state as on a healthy kiosk, whatever the test machine's NTP is."""
    monkeypatch.setattr(local, "kernel_clock_sync", lambda: ClockSync(True, 12.0))


@pytest.fixture
def entrance(tmp_path: Path, population: Population) -> Iterator[Entrance]:
    ent = Entrance(tmp_path, population)
    yield ent
    ent.close()


def failed(checks: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, c in checks.items() if c["status"] == "FAIL"]


def assert_private(text: str, population: Population) -> None:
    """No ID of anyone, not the probe's, and no secret in what the doctor printed."""
    assert TOKEN not in text and VENUE_SECRET not in text
    assert PROBE_SUBJECT[4:] not in text
    ids = {p.sub.split(":")[-1] for p in population.people}
    assert not [i for i in ids if i in text]


# -- healthy -------------------------------------------------------------------------------


def test_a_healthy_entrance_is_all_ok(entrance: Entrance, population: Population) -> None:
    code, checks, table = entrance.doctor()
    assert code == 0
    assert {n: c["status"] for n, c in checks.items()} == {
        "configuration": "OK",
        "pass keys": "OK",
        "operator keys": "SKIP",
        "state dir": "OK",
        "clock": "OK",
        "status service": "OK",
        "mqtt broker": "SKIP",
        "camera": "OK",
        "scanner": "OK",
        "gpio": "OK",
        "fire alarm": "OK",
        "passage sensor": "OK",
        "exit sensor": "SKIP",
    }
    assert "unknown_subject" in checks["status service"]["detail"]
    assert "320x240" in checks["camera"]["detail"]
    assert f"relay GPIO{RELAY} released" in checks["gpio"]["detail"]
    assert "sim1" in checks["pass keys"]["detail"]
    lines = table.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    # Aligned: every row's status starts in the same column as the header's; detail lines
    # under a row start in the DETAIL column.
    status_col, detail_col = lines[0].index("STATUS"), lines[0].index("DETAIL")
    rows = [line for line in lines[1:-2] if not line.startswith(" ")]
    assert [row[status_col:].split()[0] for row in rows] == [c["status"] for c in checks.values()]
    notes = [line for line in lines[1:-2] if line.startswith(" ")]
    assert notes and all(len(n) - len(n.lstrip()) == detail_col for n in notes)
    assert lines[-1] == "0 failed, 0 warnings, 10 ok, 3 skipped"
    assert_private(table, population)


# -- one fault at a time -------------------------------------------------------------------


def test_configuration_error_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[kiosk]\nid = 'k1'\nvenue_secret = 1234\n[gate]\nunlok_s = 3\n")
    out = io.StringIO()
    assert run_doctor(str(bad), out=out) == 2
    text = out.getvalue()
    assert "configuration  FAIL" in text
    for problem in (
        "[kiosk] venue_id: is required",
        "[kiosk] venue_secret: expected a string, got a secret value",
        "[gate] unlok_s: unknown key; did you mean 'unlock_s'?",
        "[passes] issuers: is required",
    ):
        assert problem in text
    assert "1234" not in text  # a secret's value, even a wrong one, is never echoed
    assert "fix: correct the file" in text
    assert "status service" not in text  # nothing else ran


def test_cmd_doctor_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cmd_doctor(argparse.Namespace(config=str(tmp_path / "missing.toml"), json=True))
    assert code == 2
    (check,) = json.loads(capsys.readouterr().out)
    assert check["name"] == "configuration" and check["status"] == "FAIL"
    assert "cannot read" in check["notes"][0]


def test_status_service_down(entrance: Entrance) -> None:
    entrance.world.service.faults.set(down=True)
    code, checks, table = entrance.doctor()
    assert code == 1 and failed(checks) == ["status service"]
    assert "closed without an answer" in checks["status service"]["detail"]
    assert "fix: " in table


def test_status_service_not_listening(entrance: Entrance) -> None:
    code, checks, _ = entrance.doctor(status={"url": f"http://127.0.0.1:{free_port()}"})
    assert code == 1 and failed(checks) == ["status service"]
    assert "Connection refused" in checks["status service"]["detail"]
    assert "[status] url" in checks["status service"]["fix"]


def test_wrong_token_is_rejected(entrance: Entrance) -> None:
    code, checks, table = entrance.doctor(status={"token": "not-the-right-token"})
    assert code == 1 and failed(checks) == ["status service"]
    check = checks["status service"]
    assert "token rejected (HTTP 401 unauthorized)" in check["detail"]
    assert "check [status] token" in check["fix"]
    assert "not-the-right-token" not in table


def test_status_url_that_is_not_the_api(entrance: Entrance) -> None:
    code, checks, _ = entrance.doctor(status={"url": entrance.world.service.url + "/api"})
    assert code == 1 and failed(checks) == ["status service"]
    assert "not the status API (HTTP 404 not_found)" in checks["status service"]["detail"]


def test_pass_keys_report_the_last_fetched_copy(entrance: Entrance) -> None:
    (entrance.tmp / "state").mkdir()
    shutil.copy(SIM_KEYS / "passes.jwks.json", entrance.tmp / "state" / LAST_GOOD_KEYS)
    code, checks, _ = entrance.doctor()
    assert code == 0 and checks["pass keys"]["status"] == "OK"
    assert checks["pass keys"]["notes"][0].startswith("last fetched copy: 1 usable key (sim1)")


def test_pass_keys_without_a_usable_key_fail(entrance: Entrance) -> None:
    keys = entrance.tmp / "keys.json"
    keys.write_text('{"keys": [{"kty": "RSA", "kid": "old", "n": "AQAB"}]}')
    code, checks, _ = entrance.doctor(passes={"keys_file": str(keys)})
    assert code == 1 and failed(checks) == ["pass keys"]
    assert "0 usable keys, 1 unusable entry ignored" in checks["pass keys"]["detail"]
    assert "[passes] keys_file" in checks["pass keys"]["fix"]


def test_camera_vanished(entrance: Entrance) -> None:
    entrance.world.camera.vanish()
    code, checks, _ = entrance.doctor()
    assert code == 1 and failed(checks) == ["camera"]
    assert "not connected" in checks["camera"]["detail"]


def test_camera_size_other_than_configured_is_a_warning(entrance: Entrance) -> None:
    code, checks, _ = entrance.doctor(camera={"width": 640, "height": 480})
    assert code == 0 and checks["camera"]["status"] == "WARN"
    assert "first frame 320x240, configured 640x480" in checks["camera"]["detail"]
    assert "width and height" in checks["camera"]["fix"]


def test_scanner_unplugged(entrance: Entrance) -> None:
    entrance.world.scanner.unplug()
    code, checks, _ = entrance.doctor()
    assert code == 1 and failed(checks) == ["scanner"]
    assert "no such port" in checks["scanner"]["detail"]
    assert checks["scanner"]["fix"] == "check the USB cable; ls /dev/ttyACM* /dev/serial/by-id"


def test_fire_contact_open(entrance: Entrance) -> None:
    entrance.world.turnstile.fire_alarm(True)
    code, checks, table = entrance.doctor()
    assert code == 1 and failed(checks) == ["fire alarm"]
    assert "fire contact OPEN: the kiosk will start in emergency" in table
    assert "normally-closed contact" in checks["fire alarm"]["fix"]
    assert checks["gpio"]["status"] == "OK"


def test_gpio_pin_in_use(entrance: Entrance) -> None:
    # Someone else (a running kiosk) holds the buzzer's pin: the claim fails, and the relay,
    # built first, is released again.
    from gpiozero import OutputDevice

    holder = OutputDevice(18, pin_factory=entrance.world.pins)
    try:
        code, checks, _ = entrance.doctor()
    finally:
        holder.close()
    assert code == 1 and failed(checks) == ["gpio"]
    assert "GPIO18" in checks["gpio"]["detail"]
    assert "systemctl stop ashyq-kiosk" in checks["gpio"]["fix"]
    assert checks["fire alarm"]["status"] == "SKIP"


def test_state_dir_cannot_be_created(entrance: Entrance) -> None:
    # Tests run as root, which no permission stops; a path under a regular file stops anyone.
    blocker = entrance.tmp / "not-a-folder"
    blocker.write_text("")
    code, checks, _ = entrance.doctor(kiosk={"state_dir": str(blocker / "state")})
    assert code == 1 and failed(checks) == ["state dir"]
    assert "is a file, not a folder" in checks["state dir"]["detail"]
    assert "[kiosk] state_dir" in checks["state dir"]["fix"]


@pytest.mark.parametrize(
    ("free", "status", "code"),
    [(DISK_FAIL_BELOW - 1, "FAIL", 1), (DISK_WARN_BELOW - 1, "WARN", 0)],
)
def test_state_dir_nearly_full(
    entrance: Entrance, monkeypatch: pytest.MonkeyPatch, free: int, status: str, code: int
) -> None:
    (entrance.tmp / "state").mkdir()
    (entrance.tmp / "state" / "events.sqlite").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10**10, 0, free))
    got, checks, _ = entrance.doctor()
    assert got == code and checks["state dir"]["status"] == status
    assert [n for n, c in checks.items() if c["status"] in ("FAIL", "WARN")] == ["state dir"]
    assert "free disk space" in checks["state dir"]["fix"]


def test_broker_up(entrance: Entrance, mosquitto: Mosquitto) -> None:
    operators = str(SIM_KEYS / "operators.jwks.json")
    code, checks, _ = entrance.doctor(
        mqtt={"enabled": True, "brokers": [mosquitto.url]}, operators={"keys_file": operators}
    )
    assert code == 0
    assert checks["mqtt broker"]["status"] == "OK"
    assert "MQTT 5 connected" in checks["mqtt broker"]["detail"]
    assert checks["operator keys"]["status"] == "OK"


def test_broker_down(entrance: Entrance) -> None:
    port = free_port()
    code, checks, _ = entrance.doctor(
        mqtt={"enabled": True, "brokers": [f"mqtt://127.0.0.1:{port}"]},
        operators={"keys_file": str(SIM_KEYS / "operators.jwks.json")},
    )
    assert code == 1 and failed(checks) == ["mqtt broker"]
    assert (
        f"cannot connect to 127.0.0.1:{port}: Connection refused"
        in (checks["mqtt broker"]["detail"])
    )
    assert "[mqtt] brokers" in checks["mqtt broker"]["fix"]


def test_one_broker_down_of_two_is_a_warning(entrance: Entrance, mosquitto: Mosquitto) -> None:
    down = f"mqtt://127.0.0.1:{free_port()}"
    code, checks, _ = entrance.doctor(
        mqtt={"enabled": True, "brokers": [down, mosquitto.url]},
        operators={"keys_file": str(SIM_KEYS / "operators.jwks.json")},
    )
    assert code == 0
    assert checks["mqtt broker 1"]["status"] == "WARN"
    assert checks["mqtt broker 2"]["status"] == "OK"


# -- the clock, without a world --------------------------------------------------------------

NOW = 1_800_000_000.0  # 2027-01-15


@pytest.fixture
def cfg(tmp_path: Path):
    (tmp_path / "state").mkdir()
    return load_config(write_config(tmp_path, None))


def test_clock_ok(cfg) -> None:
    check = local.check_clock(cfg, now=NOW, sync=ClockSync(True, 20.0))
    assert check.status == "OK" and "synchronised" in check.detail


def test_clock_unsynchronised_is_a_warning(cfg) -> None:
    check = local.check_clock(cfg, now=NOW, sync=ClockSync(False))
    assert check.status == "WARN"
    assert check.fix.startswith("enable systemd-timesyncd / check network")


def test_clock_before_the_release_fails(cfg) -> None:
    check = local.check_clock(cfg, now=86_400.0, sync=ClockSync(False))
    assert check.status == "FAIL" and "1970-01-02" in check.detail


def test_clock_behind_its_high_water_mark_fails(cfg) -> None:
    (cfg.state_dir / CLOCK_HWM).write_text(f"{NOW + 3600:.3f}\n")
    check = local.check_clock(cfg, now=NOW, sync=ClockSync(True))
    assert check.status == "FAIL" and "went backwards" in check.detail
    # Within the pass leeway of the mark is fine (the mark is written now and then).
    assert local.check_clock(cfg, now=NOW + 3600 - 5, sync=ClockSync(True)).status == "OK"


PASS_INACTIVE = 'offline_rule = "pass" is inactive until the clock is synchronised'


def test_clock_untrusted_says_the_pass_rule_is_inactive(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    cfg = load_config(write_config(tmp_path, None, policy={"offline_rule": "pass"}))
    check = local.check_clock(cfg, now=NOW, sync=ClockSync(False))
    assert check.status == "WARN"
    assert any(n.startswith(PASS_INACTIVE) for n in check.notes)
    (cfg.state_dir / CLOCK_HWM).write_text(f"{NOW + 3600:.3f}\n")
    check = local.check_clock(cfg, now=NOW, sync=ClockSync(True))
    assert check.status == "FAIL" and any(n.startswith(PASS_INACTIVE) for n in check.notes)


def test_pass_rule_note_only_when_it_applies(cfg, tmp_path: Path) -> None:
    check = local.check_clock(cfg, now=NOW, sync=ClockSync(False))  # offline_rule "refer"
    assert check.status == "WARN" and not any(PASS_INACTIVE in n for n in check.notes)
    cfg2 = load_config(write_config(tmp_path, None, policy={"offline_rule": "pass"}))
    check = local.check_clock(cfg2, now=NOW, sync=ClockSync(True))
    assert check.status == "OK" and not any(PASS_INACTIVE in n for n in check.notes)


def test_the_kernel_answers_adjtimex() -> None:
    # This machine's sync state is whatever it is; the call must work and say something.
    assert REAL_KERNEL_CLOCK_SYNC().synced in (True, False)


def test_state_dir_the_service_user_cannot_write(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    # The doctor runs as root, whose own write probe passes anywhere; the service's user
    # (here: nobody) cannot write a root-owned 0755 folder, and that is what matters.
    monkeypatch.setattr(local, "SERVICE_USER", "nobody")
    cfg.state_dir.chmod(0o755)
    check = local.check_state_dir(cfg)
    assert check.status == "FAIL" and "not writable by the service user nobody" in check.detail
    assert check.fix == f"chown -R nobody: {cfg.state_dir}"
    cfg.state_dir.chmod(0o777)
    assert local.check_state_dir(cfg).status == "OK"


# -- the simulation profile ----------------------------------------------------------------


def test_simulation_profile_reports_simulated_devices_not_failures(tmp_path: Path) -> None:
    """config/sim.toml outside a running simulation: the mock pins, the pseudo-terminal
    scanner and the fed camera are simulated rows (OK), not FAIL."""
    from simulators.run import SIM_CONFIG

    out = io.StringIO()
    run_doctor(str(SIM_CONFIG), out=out, as_json=True)
    checks = {c["name"]: c for c in json.loads(out.getvalue())}
    for name in ("camera", "scanner", "gpio", "fire alarm", "passage sensor", "exit sensor"):
        assert checks[name]["status"] == "OK", checks[name]
        assert checks[name]["detail"].startswith("simulated: "), checks[name]
    assert "relay GPIO17 released" in checks["gpio"]["detail"]
    # Nothing listens on the simulated service's port (no kiosk sim running): said, not FAIL.
    service = checks["status service"]
    assert service["status"] in ("OK", "WARN"), service
    if service["status"] == "WARN":
        assert service["detail"].startswith("simulated: ") and "status-service" in service["fix"]
    assert all(c["status"] != "FAIL" for c in checks.values()), checks


def test_simulated_devices_are_checked_for_real_inside_a_simulation(entrance: Entrance) -> None:
    # With the world running, sim: and mock are checked through it (see the healthy test).
    _code, checks, _table = entrance.doctor()
    assert not checks["camera"]["detail"].startswith("simulated: ")
    assert checks["fire alarm"]["detail"] == "contact closed (GPIO25 low): no alarm"
