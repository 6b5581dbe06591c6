"""Configuration loading: every problem at once, named by file, section and key."""

from __future__ import annotations

import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.policy import AntiPassback, OfflineRule
from support import REPO, write_config


def problems(path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return exc.value.problems


def test_valid_file_builds_the_policy(tmp_path):
    cfg = load_config(
        write_config(
            tmp_path,
            "http://127.0.0.1:9",
            policy={"capacity": 10, "anti_passback": "hard", "anti_passback_s": 60},
        )
    )
    assert cfg.policy.capacity == 10
    assert cfg.policy.anti_passback is AntiPassback.HARD
    assert cfg.policy.offline_rule is OfflineRule.REFER
    assert cfg.gate.unlock_s == 5.0 and cfg.status.deadline_ms == 800
    assert cfg.venue_secret.reveal_bytes() == b"test-venue-secret-0123456789"


def test_every_problem_is_reported_with_file_section_and_key(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text(
        """
[kiosk]
id = "x"
venue_secret = "short"
[passes]
issuers = "ashyq"
keys_file = "nope.json"
[policy]
capacty = 3
allowed = ["green", "purple"]
offline_rule = "denny"
[gate]
unlock_s = 0.01
[gaet]
"""
    )
    found = problems(path)
    expected = [
        "[gaet]: unknown section; did you mean 'gate'?",
        "[kiosk] venue_id: is required",
        "[passes] issuers: expected a list, got 'ashyq'",
        "[passes] keys_file: no such file",
        "[policy] capacty: unknown key; did you mean 'capacity'?",
        "[policy] allowed[1]: 'purple' is not one of",
        "[policy] offline_rule: 'denny' is not one of 'deny', 'refer', 'pass'; "
        "did you mean 'deny'?",
        "[gate] unlock_s: 0.01 is below the minimum 0.1",
        "[status] url: is required when backend is 'http'",
        "[kiosk] venue_secret: must be at least 16 characters",
    ]
    for text in expected:
        assert any(text in p for p in found), (text, found)
    assert all(p.startswith(f"{path}: ") for p in found)


def test_toml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('[kiosk]\nid = "x\n')
    [problem] = problems(path)
    assert str(path) in problem and "line 2" in problem


def test_not_utf8(tmp_path):
    path = tmp_path / "k.toml"
    path.write_bytes(b"[kiosk]\nid = '\xff'\n")
    assert "not UTF-8" in problems(path)[0]


def test_secret_and_token_files(tmp_path):
    (tmp_path / "venue.secret").write_text("a-secret-from-a-file-0123\n")
    (tmp_path / "token").write_text("tok\n")
    path = write_config(
        tmp_path,
        "https://status.example",
        kiosk={"venue_secret": None, "venue_secret_file": "venue.secret"},
        status={"token": None, "token_file": "token"},
    )
    cfg = load_config(path)
    assert cfg.venue_secret.reveal_bytes() == b"a-secret-from-a-file-0123"
    assert cfg.token is not None and cfg.token.reveal() == "tok"
    assert cfg.masked()["kiosk"]["venue_secret"] is None


def test_both_secret_forms_refused(tmp_path):
    (tmp_path / "venue.secret").write_text("a-secret-from-a-file-0123\n")
    path = write_config(tmp_path, None, kiosk={"venue_secret_file": "venue.secret"})
    assert any("not both" in p for p in problems(path))


def test_relative_paths_follow_the_file(tmp_path):
    cfg = load_config(REPO / "config" / "gym.toml")
    assert cfg.passes.keys_file == str(REPO / "simulators" / "keys" / "passes.jwks.json")
    assert cfg.state_dir == REPO / "var" / "gym"


def test_windows_and_time_zone(tmp_path):
    path = tmp_path / "k.toml"
    base = write_config(tmp_path, None).read_text()
    path.write_text(
        base.replace('timezone = "UTC"', 'timezone = "Mars/Olympus"')
        + """
[[policy.hours]]
days = ["mon", "funday"]
open = "25:00"
close = "10:00"
[[policy.rule]]
from = "10:00"
to = "10:00"
"""
    )
    found = "\n".join(problems(path))
    assert "[policy] timezone: 'Mars/Olympus' is not a known time zone" in found
    assert "[[policy.hours]] #1 days[1]: 'funday' is not one of" in found
    assert "[[policy.hours]] #1 open: '25:00' is not a time of day HH:MM" in found
    assert "[[policy.rule]] #1 allowed: is required" in found


def test_pin_conflict_names_the_default(tmp_path):
    path = write_config(tmp_path, None, gpio={"relay": 18})
    expected = "[gpio] buzzer (default 18): pin 18 is already used by relay = 18"
    assert any(expected in p for p in problems(path))
    path = write_config(tmp_path, None, gpio={"buzzer": 22})
    expected = "[gpio] led_red (default 22): pin 22 is already used by buzzer = 22"
    assert any(expected in p for p in problems(path))


def test_two_configured_pins_the_same(tmp_path):
    path = write_config(tmp_path, None, gpio={"relay": 5, "exit_sensor": 5})
    found = problems(path)
    assert any("[gpio] exit_sensor: pin 5 is already used by relay = 5" in p for p in found)


def test_anti_passback_needs_a_window(tmp_path):
    path = write_config(tmp_path, None, policy={"anti_passback": "soft"})
    assert any("[policy] anti_passback_s" in p for p in problems(path))


def test_state_dir_from_systemd(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/ashyq-kiosk")
    cfg = load_config(write_config(tmp_path, None, kiosk={"state_dir": None}))
    assert str(cfg.state_dir) == "/var/lib/ashyq-kiosk"


@pytest.mark.parametrize("value", ["", "a/b", "k+", "k#", "two words", "x" * 65])
def test_ids_are_mqtt_topic_levels(tmp_path, value):
    found = problems(write_config(tmp_path, None, kiosk={"id": value, "venue_id": value}))
    assert any("[kiosk] id: " in p and "MQTT topics" in p for p in found)
    assert any("[kiosk] venue_id: " in p for p in found)


@pytest.mark.parametrize("value", ["", "/ashyq", "ashyq/", "ashyq/+", "a/#"])
def test_mqtt_prefix_is_topic_levels(tmp_path, value):
    found = problems(write_config(tmp_path, None, mqtt={"prefix": value}))
    assert any("[mqtt] prefix: " in p for p in found)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("status", "url", "http://[::1"),
        ("status", "url", "http://host:99999"),
        ("status", "url", "https://"),
        ("mqtt", "brokers", ["mqtt://"]),
        ("mqtt", "brokers", ["mqtts://h:0x1"]),
    ],
)
def test_urls_that_do_not_parse(tmp_path, section, key, value):
    path = write_config(tmp_path, "http://127.0.0.1:9", **{section: {key: value}})
    assert any(f"[{section}] {key}: " in p and "not a usable URL" in p for p in problems(path))
