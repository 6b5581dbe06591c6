"""Commissioning mistakes that load fine: `config check` warns (exit 0), `doctor` shows WARN
rows and FAILs the unsafe ones. The simulation profile (mock pins) and the samples give only
the findings they are meant to."""

from __future__ import annotations

import io
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.config.commissioning import SIM_VENUE_SECRET, TEST_KEYS, Finding, findings
from kiosk.doctor import local, run_doctor
from kiosk.doctor.local import ClockSync
from support import REPO, SIM_KEYS, TOKEN, write_config

CONFIG = REPO / "config"
REAL_KEYS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k-2026", "x": "A" * 43}]}
MODE_WORDS = "readable by every user"


@pytest.fixture(autouse=True)
def ntp_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "kernel_clock_sync", lambda: ClockSync(True, 12.0))


def found(path: Path) -> list[Finding]:
    return findings(load_config(path))


def where(items: list[Finding]) -> set[tuple[str, bool]]:
    return {(f.where, f.unsafe) for f in items if MODE_WORDS not in f.message}


def real(tmp_path: Path, **sections) -> Path:
    """A kiosk for a real entrance (real pins, its own keys) without a mistake."""
    keys = tmp_path / "passes.jwks.json"
    keys.write_text(json.dumps(REAL_KEYS))
    sections.setdefault("passes", {}).setdefault("keys_file", str(keys))
    sections["passes"].setdefault("issuers", ["kz-health"])
    path = write_config(tmp_path, None, **sections)
    path.chmod(0o640)
    return path


def doctor(path: Path) -> tuple[int, dict[str, dict], str]:
    out = io.StringIO()
    code = run_doctor(str(path), out=out, as_json=True)
    table = io.StringIO()
    run_doctor(str(path), out=table)
    return code, {c["name"]: c for c in json.loads(out.getvalue())}, table.getvalue()


# -- what the module knows about the simulation --------------------------------------------


def test_the_test_keys_and_sim_secret_are_the_shipped_ones():
    shipped = {
        k["x"]: k["kid"]
        for f in SIM_KEYS.glob("*.jwks.json")
        for k in json.loads(f.read_text())["keys"]
    }
    assert shipped == TEST_KEYS
    sim = tomllib.loads((CONFIG / "sim.toml").read_text())
    assert sim["kiosk"]["venue_secret"].encode() == SIM_VENUE_SECRET


def test_a_real_kiosk_without_mistakes_has_no_findings(tmp_path):
    assert found(real(tmp_path)) == []


# -- the shipped profiles ------------------------------------------------------------------


def test_the_simulation_profile_has_no_findings():
    assert found(CONFIG / "sim.toml") == []


@pytest.mark.parametrize("name", ["gym", "cinema", "airport"])
def test_venue_samples_say_they_carry_the_simulators_keys(name):
    """Intended: these samples run against the simulators (`kiosk sim` uses mock pins);
    copied to a real kiosk as they are, the doctor must stop them."""
    expected = {
        ("[kiosk] venue_secret", True),
        ("[passes] keys_file", True),
        ("[passes] issuers", False),
    }
    if name != "cinema":  # the cinema has no operator keys
        expected.add(("[operators] keys_file", True))
    assert where(found(CONFIG / f"{name}.toml")) == expected


def test_production_template_warns_only_of_its_placeholders(tmp_path):
    """Intended: the template's CHANGE-ME values are warnings, nothing else is found."""
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(CONFIG / "production.toml", etc / "kiosk.toml")
    (etc / "venue-secret").write_text("4f" * 32 + "\n")
    (etc / "status-token").write_text("a-real-token\n")
    (etc / "passes.jwks.json").write_text(json.dumps(REAL_KEYS))
    for f in etc.iterdir():
        f.chmod(0o640)
    items = found(etc / "kiosk.toml")
    assert where(items) == {
        ("[kiosk] id", False),
        ("[kiosk] venue_id", False),
        ("[passes] issuers", False),
        ("[status] url", False),
        ("[policy] name", False),
    }
    assert all("CHANGE-ME placeholder" in f.message for f in items)


# -- each mistake --------------------------------------------------------------------------


def test_placeholder_secret_is_unsafe_and_not_echoed(tmp_path):
    (tmp_path / "token").write_text("CHANGE-ME-token\n")
    (tmp_path / "token").chmod(0o640)
    items = found(real(tmp_path, status={"token": None, "token_file": str(tmp_path / "token")}))
    assert [(f.where, f.unsafe) for f in items] == [("[status] token", True)]
    assert "CHANGE-ME-token" not in str(items[0])


def test_test_keys_are_recognised_by_content_not_path(tmp_path):
    doc = json.loads((SIM_KEYS / "passes.jwks.json").read_text())
    doc["keys"][0]["kid"] = "prod-2026"
    copy = tmp_path / "authority.jwks.json"
    copy.write_text(json.dumps(doc))
    items = found(real(tmp_path, passes={"keys_file": str(copy)}))
    assert [(f.where, f.unsafe) for f in items] == [("[passes] keys_file", True)]
    assert "TEST ONLY key 'sim1'" in items[0].message


def test_sim_secret_in_a_real_kiosk_is_unsafe(tmp_path):
    items = found(real(tmp_path, kiosk={"venue_secret": SIM_VENUE_SECRET.decode()}))
    assert [(f.where, f.unsafe) for f in items] == [("[kiosk] venue_secret", True)]


def test_the_simulation_may_use_test_keys(tmp_path):
    path = write_config(
        tmp_path,
        None,
        kiosk={"venue_secret": SIM_VENUE_SECRET.decode()},
        gpio={"pin_factory": "mock"},
    )
    assert found(path) == []


@pytest.mark.parametrize(
    ("url", "token", "expected"),
    [
        ("http://10.1.2.3:8080", TOKEN, [("[status] url", True)]),
        ("http://status.example", TOKEN, [("[status] url", True)]),
        ("http://status.example", None, [("[status] url", False)]),
        ("http://127.0.0.1:8080", TOKEN, []),
        ("http://127.5.5.5", TOKEN, []),
        ("http://localhost:8080", TOKEN, []),
        ("http://[::1]:8080", TOKEN, []),
        ("https://10.1.2.3", TOKEN, []),
    ],
)
def test_bearer_token_over_plain_http(tmp_path, url, token, expected):
    path = real(tmp_path, status={"backend": "http", "url": url, "token": token})
    assert [(f.where, f.unsafe) for f in found(path)] == expected


def test_broker_password_over_plain_mqtt(tmp_path):
    mqtt = {"enabled": True, "brokers": ["mqtt://10.0.0.5:1883"], "password": "pw-0123"}
    items = found(real(tmp_path, mqtt=mqtt))
    assert [(f.where, f.unsafe) for f in items] == [("[mqtt] brokers", True)]
    mqtt["brokers"] = ["mqtts://10.0.0.5:8883", "mqtt://127.0.0.1:1883"]
    assert found(real(tmp_path, mqtt=mqtt)) == []


def test_world_readable_secret_file_is_unsafe(tmp_path):
    secret = tmp_path / "venue-secret"
    secret.write_text("a-secret-from-a-file-0123\n")
    secret.chmod(0o644)
    kiosk = {"venue_secret": None, "venue_secret_file": str(secret)}
    items = found(real(tmp_path, kiosk=kiosk))
    assert [(f.where, f.unsafe) for f in items] == [("[kiosk] venue_secret_file", True)]
    assert "mode 0644" in items[0].message and "chmod 0640" in items[0].fix
    secret.chmod(0o640)
    assert found(real(tmp_path, kiosk=kiosk)) == []


def test_inline_secret_in_a_world_readable_file_is_a_warning(tmp_path):
    path = real(tmp_path)
    path.chmod(0o644)
    items = found(path)
    assert [(f.where, f.unsafe) for f in items] == [
        ("[kiosk] venue_secret", False),
        ("[status] token", False),
    ]


def test_capacity_without_exit_sensor(tmp_path):
    items = found(real(tmp_path, policy={"capacity": 50}))
    assert [(f.where, f.unsafe) for f in items] == [("[policy] capacity", False)]
    assert "occupancy only grows" in items[0].message
    assert found(real(tmp_path, policy={"capacity": 50}, gpio={"exit_sensor": 5})) == []


@pytest.mark.parametrize(
    ("gpio", "key", "words"),
    [
        ({"buzzer": 2}, "buzzer", "I2C SDA"),
        ({"buzzer": 3}, "buzzer", "I2C SCL"),
        ({"exit_sensor": 14}, "exit_sensor", "UART TXD"),
        ({"exit_sensor": 15}, "exit_sensor", "UART RXD"),
        ({"relay": 0}, "relay", "ID_SD"),
        ({"relay": 30}, "relay", "not on the Raspberry Pi's 40-pin header"),
        ({"led_kind": "three", "led_amber": 40}, "led_amber", "not on the"),
    ],
)
def test_pins_off_the_header_or_on_a_bus(tmp_path, gpio, key, words):
    items = found(real(tmp_path, gpio=gpio))
    assert [(f.where, f.unsafe) for f in items] == [(f"[gpio] {key}", False)]
    assert words in items[0].message


def test_no_fire_alarm_input_on_a_real_kiosk(tmp_path):
    items = found(real(tmp_path, gpio={"fire_alarm": -1}))
    assert [(f.where, f.unsafe) for f in items] == [("[gpio] fire_alarm", False)]
    assert found(write_config(tmp_path, None, gpio={"fire_alarm": -1, "pin_factory": "mock"})) == []


def test_led_amber_is_not_checked_for_an_rgb_led(tmp_path):
    assert found(real(tmp_path, gpio={"led_amber": 40})) == []


# -- the commands --------------------------------------------------------------------------


def test_config_check_prints_findings_and_still_exits_0(tmp_path, capsys):
    path = real(
        tmp_path,
        policy={"capacity": 50},
        status={"backend": "http", "url": "http://10.1.2.3", "token": TOKEN},
    )
    assert main(["config", "check", "--show", str(path)]) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # --show stays one JSON document on standard output
    assert f"unsafe: {path}: [status] url: the bearer token would go over plain http" in err
    assert f"warning: {path}: [policy] capacity: capacity 50 without" in err
    assert "  fix: use https://" in err
    assert err.rstrip().endswith("OK (kiosk k1, venue v1, policy default)")


def test_doctor_warns_and_fails_the_unsafe(tmp_path):
    path = real(
        tmp_path,
        policy={"capacity": 50},
        status={"backend": "http", "url": "http://192.0.2.1:9", "token": TOKEN, "deadline_ms": 50},
    )
    code, checks, table = doctor(path)
    assert code == 1
    assert checks["configuration"]["status"] == "OK"
    assert checks["[status] url"]["status"] == "FAIL"
    assert "use https://" in checks["[status] url"]["fix"]
    assert checks["[policy] capacity"]["status"] == "WARN"
    assert any(line.split()[:3] == ["[policy]", "capacity", "WARN"] for line in table.splitlines())


def test_doctor_fails_test_keys_in_a_real_kiosk():
    code, checks, _ = doctor(CONFIG / "airport.toml")
    assert code == 1
    assert checks["[passes] keys_file"]["status"] == "FAIL"
    assert checks["[kiosk] venue_secret"]["status"] == "FAIL"


def test_no_secret_in_any_output(tmp_path, capsys):
    """venue_secret, token and password never printed: config check, --show, doctor."""
    secrets = {
        "venue_secret": "venue-secret-CHANGE-ME-4242",
        "token": "token-CHANGE-ME-4242",
        "password": "password-CHANGE-ME-4242",
    }
    path = real(
        tmp_path,
        kiosk={"venue_secret": secrets["venue_secret"]},
        status={
            "backend": "http",
            "url": "http://10.9.9.9:9",
            "token": secrets["token"],
            "deadline_ms": 50,
        },
        mqtt={"enabled": False, "brokers": ["mqtt://10.9.9.9:9"], "password": secrets["password"]},
    )
    path.chmod(0o644)
    texts = []
    assert main(["config", "check", "--show", str(path)]) == 0
    texts += capsys.readouterr()
    _, _, table = doctor(path)
    out = io.StringIO()
    run_doctor(str(path), out=out, as_json=True)
    texts += [table, out.getvalue(), repr(load_config(path)), *map(str, found(path))]
    shown = json.loads(texts[0])
    assert shown["kiosk"]["venue_secret"] == shown["status"]["token"] == "***"
    assert shown["mqtt"]["password"] == "***"
    for text in texts:
        for secret in secrets.values():
            assert secret not in text
            assert secret.split("-")[0] + "-CHANGE" not in text


def test_show_prints_the_schedules_and_the_venue_policy(capsys):
    assert main(["config", "check", "--show", str(CONFIG / "cinema.toml")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["policy"]["hours"] == [
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "open": "10:00",
            "close": "02:00",
        }
    ]
    assert shown["policy"]["rule"] == [
        {"days": ["sat", "sun"], "from": "00:00", "to": "24:00", "allowed": ["green"]}
    ]
    assert shown["venue_policy"]["open"] == ["every day 10:00-02:00 (into the next day)"]
    assert shown["venue_policy"]["allowed"] == [
        "sat,sun 00:00-24:00: green",
        "otherwise: green, blue",
    ]
    assert shown["venue_policy"]["anti_passback"] == "hard, 120 s"
    assert main(["config", "check", "--show", str(CONFIG / "gym.toml")]) == 0
    gym = json.loads(capsys.readouterr().out)["venue_policy"]
    assert gym["open"] == ["mon-fri 06:00-23:00", "sat,sun 08:00-21:00"]
    assert gym["capacity"] == 120


def test_world_readable_web_secret_files_are_unsafe(tmp_path):
    token, key = tmp_path / "metrics-token", tmp_path / "web.key"
    token.write_text("a-metrics-token-0123\n")
    key.write_text("not really a key\n")
    token.chmod(0o644)
    key.chmod(0o644)
    (tmp_path / "web.crt").write_text("x")
    web = {"metrics_token_file": str(token), "tls_cert": "web.crt", "tls_key": str(key)}
    items = found(real(tmp_path, web=web))
    assert [(f.where, f.unsafe) for f in items] == [
        ("[web] metrics_token_file", True),
        ("[web] tls_key", True),
    ]
    token.chmod(0o640)
    key.chmod(0o640)
    assert found(real(tmp_path, web=web)) == []


def test_plain_http_beyond_loopback_is_a_warning(tmp_path):
    web = {"listen": "0.0.0.0:8088", "allow_plain_remote": True}
    items = found(real(tmp_path, web=web))
    assert [(f.where, f.unsafe) for f in items] == [("[web] allow_plain_remote", False)]
    assert found(real(tmp_path, web={"listen": "127.0.0.1:8088", "allow_plain_remote": True})) == []
