"""Commissioning mistakes: a configuration that loads, yet should not guard a real entrance.

`findings(cfg)` is shared by `kiosk config check` (printed as warnings, exit code unchanged)
and `kiosk doctor` (WARN rows, FAIL for the unsafe ones). Each finding names the file, the
section and the key, and says what to do. No finding ever quotes a secret.

A profile is *the simulation* when its pins are mock pins (``[gpio] pin_factory = "mock"``):
such a kiosk cannot release a real turnstile, so the simulators' keys, the simulated venue
secret and placeholders are harmless there, and the checks that only matter for a real
entrance (test keys, placeholders, secret file modes) are skipped. Setting "mock" to hide
them leaves the gate without a relay at all, which fails secure and the doctor's GPIO row
shows.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config.load import Config
from kiosk.config.schema import SECTIONS
from kiosk.config.values import is_loopback, url_host, used_pins
from kiosk.secret import Secret

PLACEHOLDER = "change-me"
# The public halves of the simulators' TEST ONLY keys (simulators/keys/), by their "x":
# compared by content, so a renamed or copied file is still recognised.
# tests/test_config_warnings.py checks these against the shipped files.
TEST_KEYS = {
    "3Lh1e6jGJ9t-DjyHiy1jrApZ85dRCKYiX1vUR2MJ7qg": "sim1",
    "1Wf-95vH_O1TmJQ3Sr-5hsnUGO3ea9RzyNzbjBjpu2E": "op1",
}
TEST_ISSUER = "ashyq-sim"
SIM_VENUE_SECRET = b"sim-only-venue-secret-CHANGE-ME"  # config/sim.toml's, public
HEADER_PINS = range(28)  # BCM 0-27 are on the 40-pin header
RESERVED_PINS = {
    0: "ID_SD, the HAT identification EEPROM's bus",
    1: "ID_SC, the HAT identification EEPROM's bus",
    2: "I2C SDA (an RTC or a display there takes it)",
    3: "I2C SCL (an RTC or a display there takes it)",
    14: "UART TXD (the serial console or a serial scanner takes it)",
    15: "UART RXD (the serial console or a serial scanner takes it)",
}
INLINE_SECRETS = (
    ("kiosk", "venue_secret"),
    ("status", "token"),
    ("mqtt", "password"),
    ("web", "metrics_token"),
)
SECRET_FILES = (
    ("kiosk", "venue_secret_file"),
    ("status", "token_file"),
    ("status", "client_key"),
    ("mqtt", "password_file"),
    ("mqtt", "client_key"),
    ("web", "metrics_token_file"),
    ("web", "tls_key"),
)


@dataclass(frozen=True)
class Finding:
    """One commissioning mistake: where it is, what is wrong, what to do.

    ``unsafe`` findings make the doctor FAIL: the kiosk would admit people it should not or
    hand its secrets to others. The rest are warnings."""

    path: Path
    where: str
    message: str
    fix: str
    unsafe: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.where}: {self.message}; {self.fix}"


def is_simulation(cfg: Config) -> bool:
    """Whether ``cfg`` is a simulated kiosk (mock pins: no real turnstile to release)."""
    return cfg.gpio.pin_factory == "mock"


def findings(cfg: Config) -> list[Finding]:
    """Every commissioning mistake in ``cfg``, in file order."""
    found: list[Finding] = []

    def add(where: str, message: str, fix: str, *, unsafe: bool = False) -> None:
        found.append(Finding(cfg.path, where, message, fix, unsafe))

    if not is_simulation(cfg):
        _placeholders(cfg, add)
        _test_keys(cfg, add)
        _secret_modes(cfg, add)
        _fire_alarm(cfg, add)
    _plain_text_secrets(cfg, add)
    _plain_web(cfg, add)
    _capacity(cfg, add)
    _pins(cfg, add)
    return found


def _is_sim_secret(cfg: Config) -> bool:
    return cfg.venue_secret.reveal_bytes() == SIM_VENUE_SECRET


def _revealed(secret: Secret | None) -> str:
    return "" if secret is None else secret.reveal()


def _placeholders(cfg: Config, add: Any) -> None:
    secrets = {
        "[kiosk] venue_secret": cfg.venue_secret.reveal(),
        "[status] token": _revealed(cfg.token),
        "[mqtt] password": _revealed(cfg.mqtt_password),
    }
    for where, value in secrets.items():
        if _is_sim_secret(cfg) and where == "[kiosk] venue_secret":
            continue  # said below, more precisely
        if PLACEHOLDER in value.lower():
            add(
                where,
                "the secret is still the template's CHANGE-ME placeholder, known to everyone",
                "put the real secret in its file (see config/README.md)",
                unsafe=True,
            )
    for name in SECTIONS:
        for key, value in cfg.section(name).as_dict().items():
            if (name, key) in INLINE_SECRETS:
                continue
            texts = value if isinstance(value, list) else [value]
            for text in texts:
                if isinstance(text, str) and PLACEHOLDER in text.lower():
                    add(
                        f"[{name}] {key}",
                        f"{text!r} is still a CHANGE-ME placeholder of the template",
                        f"replace it with this kiosk's real {key}",
                    )


def _test_keys(cfg: Config, add: Any) -> None:
    if _is_sim_secret(cfg):
        add(
            "[kiosk] venue_secret",
            "is the simulation's venue secret (config/sim.toml), public in the repository: "
            "anyone can link the venue's pseudonyms to people",
            "use venue_secret_file with the venue's own secret (scripts/install.sh makes one)",
            unsafe=True,
        )
    what = {
        "passes": (cfg.passes.keys_file, "mint passes this kiosk admits"),
        "operators": (cfg.operators.keys_file, "sign operator commands"),
    }
    for section, (path, does) in what.items():
        for kid in _test_kids(path):
            add(
                f"[{section}] keys_file",
                f"trusts the simulators' TEST ONLY key {kid!r} (simulators/keys/): anyone "
                f"with the repository can {does}",
                "use the JWK Set of the real authority",
                unsafe=True,
            )
    if TEST_ISSUER in (cfg.passes.issuers or []):
        add(
            "[passes] issuers",
            f"trusts {TEST_ISSUER!r}, the simulated authority",
            "name the real issuer",
        )


def _test_kids(path: str | None) -> list[str]:
    """The kids of the test keys in the JWK Set at ``path`` (unreadable: the doctor's key
    rows say so; nothing to add here)."""
    if not path:
        return []
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        keys = doc.get("keys", []) if isinstance(doc, dict) else []
    except (OSError, ValueError):
        return []
    return [
        TEST_KEYS[k["x"]]
        for k in keys
        if isinstance(k, dict) and isinstance(k.get("x"), str) and k["x"] in TEST_KEYS
    ]


def _secret_modes(cfg: Config, add: Any) -> None:
    for section, key in SECRET_FILES:
        path = cfg.section(section).as_dict()[key]
        mode = _mode(path)
        if mode is not None and mode & stat.S_IROTH:
            add(
                f"[{section}] {key}",
                f"{path} is readable by every user of this machine (mode {mode & 0o777:04o})",
                f"chmod 0640 {path} (owner root, group the service's)",
                unsafe=True,
            )
    held = [(s, k) for s, k in INLINE_SECRETS if cfg.section(s).as_dict()[k]]
    if _is_sim_secret(cfg):  # public anyway: said as unsafe above
        held = [(s, k) for s, k in held if k != "venue_secret"]
    mode = _mode(str(cfg.path))
    for section, key in held:
        if mode is not None and mode & stat.S_IROTH:
            add(
                f"[{section}] {key}",
                f"is written in the file, and {cfg.path} is readable by every user of this "
                f"machine (mode {mode & 0o777:04o})",
                f"move it to {key}_file (mode 0640), or chmod 0640 {cfg.path}",
            )


def _plain_web(cfg: Config, add: Any) -> None:
    """The opt-in for plain HTTP beyond loopback: console passwords, sessions and the
    metrics token then cross the network readable."""
    web = cfg.web
    host, _ = web.host_port
    if web.enabled and web.allow_plain_remote and not web.tls_cert and not is_loopback(host):
        add(
            "[web] allow_plain_remote",
            f"the console's logins and the metrics token go over plain http on {web.listen}",
            "give tls_cert and tls_key, unless this is a closed kiosk network nobody else is on",
        )


def _mode(path: str | None) -> int | None:
    if not path:
        return None
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def _plain_text_secrets(cfg: Config, add: Any) -> None:
    status = cfg.status
    if status.backend == "http" and status.url and status.url.startswith("http://"):
        host, _ = url_host(status.url)
        if host is not None and not is_loopback(host):
            if cfg.token:
                add(
                    "[status] url",
                    f"the bearer token would go over plain http to {host}, which is not this "
                    "machine: anyone on the way can read it and ask for statuses",
                    "use https:// (plain http is for loopback and the simulators)",
                    unsafe=True,
                )
            else:
                add(
                    "[status] url",
                    f"status lookups go over plain http to {host}: the network sees them",
                    "use https://",
                )
    mqtt = cfg.mqtt
    if mqtt.enabled and cfg.mqtt_password:
        for url in mqtt.brokers or []:
            host, _ = url_host(url)
            if url.startswith("mqtt://") and host is not None and not is_loopback(host):
                add(
                    "[mqtt] brokers",
                    f"the broker password would go unencrypted to {host} (mqtt://)",
                    "use mqtts:// for a broker that is not this machine",
                    unsafe=True,
                )


def _fire_alarm(cfg: Config, add: Any) -> None:
    if cfg.gpio.fire_alarm < 0:
        add(
            "[gpio] fire_alarm",
            "is -1: no fire-alarm contact, so the kiosk never holds the turnstile free in an "
            "emergency (gate.md); only the turnstile's own wiring would",
            "wire the alarm panel's normally-closed contact and set fire_alarm to its pin",
        )


def _capacity(cfg: Config, add: Any) -> None:
    if cfg.policy.capacity and cfg.gpio.exit_sensor < 0:
        add(
            "[policy] capacity",
            f"capacity {cfg.policy.capacity} without [gpio] exit_sensor: nobody is counted "
            "out, so occupancy only grows until the venue reads full",
            "wire an exit sensor and set [gpio] exit_sensor, or set capacity = 0",
        )


def _pins(cfg: Config, add: Any) -> None:
    gpio = cfg.gpio
    for key in used_pins(gpio.led_kind):
        pin = getattr(gpio, key)
        if pin < 0:
            continue
        if pin not in HEADER_PINS:
            add(
                f"[gpio] {key}",
                f"BCM {pin} is not on the Raspberry Pi's 40-pin header (BCM 0-27)",
                "use a header pin (see `pinout`)",
            )
        elif pin in RESERVED_PINS:
            add(
                f"[gpio] {key}",
                f"BCM {pin} is {RESERVED_PINS[pin]}",
                "use a free general-purpose pin such as BCM 5, 6, 12, 13, 16 or 26",
            )
