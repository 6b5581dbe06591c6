"""Every configuration key: its type, default, limits and meaning.

The documentation in config/README.md follows this table; `tests/test_config_docs.py` checks
that every key here is documented there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED: Any = object()
STATUSES = ("green", "blue", "yellow", "red")
LANGUAGES = ("kk", "ru", "en")  # the display's languages (kiosk/glossary/reasons.toml)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Key:
    """One key: ``kind`` is the Python type TOML gives (list items in ``item``)."""

    kind: type
    default: Any = REQUIRED
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    item: type | None = None
    secret: bool = False
    path: bool = False
    must_exist: bool = False


SECTIONS: dict[str, dict[str, Key]] = {
    "kiosk": {
        "id": Key(str),
        "venue_id": Key(str),
        "state_dir": Key(str, None, path=True),
        "venue_secret": Key(str, None, secret=True),
        "venue_secret_file": Key(str, None, path=True, must_exist=True),
        "leeway_s": Key(float, 30.0, min=0, max=600),
        "log_level": Key(str, "info", choices=("debug", "info", "warning", "error")),
    },
    "passes": {
        "issuers": Key(list, REQUIRED, item=str),
        "keys_file": Key(str, REQUIRED, path=True, must_exist=True),
        "refresh_keys": Key(bool, True),
    },
    "operators": {
        "keys_file": Key(str, None, path=True, must_exist=True),
    },
    "status": {
        "backend": Key(str, "http", choices=("http", "mqtt", "none")),
        "url": Key(str, None),
        "token": Key(str, None, secret=True),
        "token_file": Key(str, None, path=True, must_exist=True),
        "ca_file": Key(str, None, path=True, must_exist=True),
        "client_cert": Key(str, None, path=True, must_exist=True),
        "client_key": Key(str, None, path=True, must_exist=True),
        "deadline_ms": Key(int, 800, min=50, max=10_000),
    },
    "policy": {
        "name": Key(str, "default"),
        "timezone": Key(str, "Asia/Almaty"),
        "allowed": Key(list, ["green", "blue"], item=str, choices=STATUSES),
        "capacity": Key(int, 0, min=0, max=100_000),
        "anti_passback": Key(str, "off", choices=("off", "soft", "hard")),
        "anti_passback_s": Key(float, 0.0, min=0, max=7 * 86_400),
        "offline_rule": Key(str, "refer", choices=("deny", "refer", "pass")),
        "max_pass_age_s": Key(float, 300.0, min=0, max=3600),
        "lock_s": Key(float, 0.0, min=0, max=86_400),
    },
    "gate": {
        "unlock_s": Key(float, 5.0, min=0.1, max=60),
        "cooldown_s": Key(float, 5.0, min=0.5, max=600),
        "left_view_s": Key(float, 1.0, min=0, max=60),
        "fail_safe": Key(bool, False),
        "idle_light": Key(str, "dim", choices=("dim", "off")),
        "deny_light_s": Key(float, 2.0, min=0.1, max=30),
        "refer_light_s": Key(float, 3.0, min=0.1, max=30),
    },
    "camera": {
        "enabled": Key(bool, False),
        "url": Key(str, "/dev/video0"),
        "width": Key(int, 1280, min=160, max=4096),
        "height": Key(int, 720, min=120, max=4096),
        "fps": Key(int, 30, min=1, max=120),
        "decoder": Key(str, "zxing", choices=("zxing", "pyzbar")),
        "reconnect_max_s": Key(float, 10.0, min=0.1, max=300),
    },
    "scanner": {
        "enabled": Key(bool, False),
        "url": Key(str, "/dev/ttyACM0"),
        "baud": Key(
            int,
            9600,
            choices=(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200),
            min=1200,
            max=115_200,
        ),
        "reconnect_max_s": Key(float, 5.0, min=0.1, max=300),
    },
    "gpio": {
        "pin_factory": Key(str, "default", choices=("default", "lgpio", "rpigpio", "mock")),
        "relay": Key(int, 17, min=0, max=53),
        "relay_active_high": Key(bool, True),
        "led_kind": Key(str, "rgb", choices=("rgb", "three")),
        "led_red": Key(int, 22, min=0, max=53),
        "led_green": Key(int, 27, min=0, max=53),
        "led_blue": Key(int, 24, min=0, max=53),
        "led_amber": Key(int, 24, min=0, max=53),
        "buzzer": Key(int, 18, min=0, max=53),
        "passage_sensor": Key(int, 23, min=0, max=53),
        "exit_sensor": Key(int, -1, min=-1, max=53),
        "fire_alarm": Key(int, 25, min=-1, max=53),
    },
    "mqtt": {
        "enabled": Key(bool, False),
        "brokers": Key(list, ["mqtt://127.0.0.1:1883"], item=str),
        "prefix": Key(str, "ashyq/v1"),
        "client_id": Key(str, None),
        "username": Key(str, None),
        "password": Key(str, None, secret=True),
        "password_file": Key(str, None, path=True, must_exist=True),
        "ca_file": Key(str, None, path=True, must_exist=True),
        "client_cert": Key(str, None, path=True, must_exist=True),
        "client_key": Key(str, None, path=True, must_exist=True),
        "keepalive_s": Key(int, 30, min=5, max=3600),
        "retention_s": Key(float, 7 * 86_400.0, min=60, max=366 * 86_400),
        "max_events": Key(int, 1_000_000, min=1000, max=100_000_000),
    },
    "web": {
        "enabled": Key(bool, True),
        "listen": Key(str, "127.0.0.1:8088"),
        "tls_cert": Key(str, None, path=True, must_exist=True),
        "tls_key": Key(str, None, path=True, must_exist=True),
        "allow_plain_remote": Key(bool, False),
        "accounts_file": Key(str, None, path=True),
        "languages": Key(list, ["kk", "ru", "en"], item=str, choices=LANGUAGES),
        "show_holder": Key(bool, True),
        "metrics_token": Key(str, None, secret=True),
        "metrics_token_file": Key(str, None, path=True, must_exist=True),
        "session_s": Key(float, 3600.0, min=60, max=86_400),
    },
    "metrics": {
        "textfile": Key(str, None, path=True),
        "textfile_period_s": Key(float, 15.0, min=1, max=3600),
    },
}

# Arrays of tables inside [policy]: [[policy.hours]] and [[policy.rule]].
TABLES: dict[str, dict[str, Key]] = {
    "hours": {
        "days": Key(list, list(DAYS), item=str, choices=DAYS),
        "open": Key(str, "00:00"),
        "close": Key(str, "24:00"),
    },
    "rule": {
        "days": Key(list, list(DAYS), item=str, choices=DAYS),
        "from": Key(str, "00:00"),
        "to": Key(str, "24:00"),
        "allowed": Key(list, REQUIRED, item=str, choices=STATUSES),
    },
}
