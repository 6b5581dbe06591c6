"""Load and validate a configuration file, reporting every problem at once."""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.config.schema import DAYS, REQUIRED, SECTIONS, TABLES, Key
from kiosk.config.sections import Config, Section, build_config
from kiosk.config.values import is_loopback, read_toml, shown_value, url_host, used_pins
from kiosk.errors import ConfigError, KioskError
from kiosk.policy import (
    MINUTES_PER_DAY,
    AntiPassback,
    OfflineRule,
    StatusRule,
    VenuePolicy,
    Window,
)

__all__ = ["Config", "Section", "load_config"]

DEFAULT_STATE_DIR = "/var/lib/ashyq-kiosk"
# Ids are MQTT topic levels and command audiences (mqtt.md): no "/", "+", "#" or spaces.
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}")  # ASCII digits only: int() would take any script's


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.path}: {where}: {message}")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    path = Path(path)
    raw = read_toml(path)
    problems = _Problems(path)
    base = path.resolve().parent
    sections: dict[str, dict[str, Any]] = {}
    for name in raw:
        if name not in SECTIONS:
            problems.add(f"[{name}]", "unknown section" + _near(name, SECTIONS))
    for name, keys in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.add(f"[{name}]", "must be a table")
            table = {}
        extra = set(TABLES) if name == "policy" else {"messages"} if name == "web" else set()
        sections[name] = _section(table, keys, f"[{name}]", base, problems, extra)
    gpio_given = raw.get("gpio")
    _cross_checks(sections, problems, set(gpio_given) if isinstance(gpio_given, dict) else set())
    secret = _venue_secret(sections["kiosk"], problems)
    token = _token(sections["status"], problems)
    mqtt_password = _mqtt_password(sections["mqtt"], problems)
    metrics_token = _metrics_token(sections["web"], problems)
    web_raw = raw.get("web")
    messages = _messages(web_raw.get("messages") if isinstance(web_raw, dict) else None, problems)
    policy = _policy(raw.get("policy", {}), sections["policy"], problems, base)
    if problems.items:
        raise ConfigError(problems.items)
    assert policy is not None
    return build_config(
        path,
        sections,
        policy,
        secret,
        token,
        mqtt_password,
        metrics_token=metrics_token,
        messages=messages,
    )


def _near(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _section(
    table: dict[str, Any],
    keys: dict[str, Key],
    where: str,
    base: Path,
    problems: _Problems,
    extra: set[str],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in table:
        if key not in keys and key not in extra:
            problems.add(f"{where} {key}", "unknown key" + _near(key, keys))
    for key, spec in keys.items():
        if key not in table:
            if spec.default is REQUIRED:
                problems.add(f"{where} {key}", "is required")
            values[key] = None if spec.default is REQUIRED else spec.default
            continue
        value = _value(table[key], spec, f"{where} {key}", problems)
        if value is not None and spec.path:
            value = _path(value, spec, base, f"{where} {key}", problems)
        values[key] = value
    return values


def _path(value: str, spec: Key, base: Path, where: str, problems: _Problems) -> str | None:
    try:
        resolved = str((base / os.path.expanduser(value)).resolve())
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        problems.add(where, f"cannot resolve the path {shown_value(value)}: {exc}")
        return None
    if spec.must_exist and not os.path.isfile(resolved):  # isfile: False, never an OSError
        what = "is a folder, not a file" if os.path.isdir(resolved) else "no such file"
        problems.add(where, f"{what}: {resolved}")
    return resolved


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _value(value: Any, spec: Key, where: str, problems: _Problems) -> Any:
    if spec.kind is list:
        if not isinstance(value, list):
            problems.add(where, f"expected a list, got {value!r}")
            return None
        items = [
            _scalar(v, spec, spec.item or str, f"{where}[{i}]", problems)
            for i, v in enumerate(value)
        ]
        return None if any(v is None for v in items) else items
    return _scalar(value, spec, spec.kind, where, problems)


def _scalar(value: Any, spec: Key, kind: type, where: str, problems: _Problems) -> Any:
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True  # converted below, after the range check (a huge int overflows a float)
    shown = "a secret value" if spec.secret else shown_value(value)  # never echo a secret
    if not ok:
        problems.add(where, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {shown}")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        # NaN compares false with every limit, so it would slip through the range check.
        problems.add(where, f"{shown} is not a finite number")
        return None
    if isinstance(value, str) and "\x00" in value:
        problems.add(where, "contains a NUL character")
        return None
    if spec.choices is not None and value not in spec.choices:
        choices = ", ".join(repr(c) for c in spec.choices)
        hint = _near(value, [str(c) for c in spec.choices]) if isinstance(value, str) else ""
        problems.add(where, f"{shown} is not one of {choices}{hint}")
        return None
    if spec.min is not None and value < spec.min:
        problems.add(where, f"{shown} is below the minimum {spec.min:g}")
        return None
    if spec.max is not None and value > spec.max:
        problems.add(where, f"{shown} is above the maximum {spec.max:g}")
        return None
    return float(value) if kind is float else value


def _cross_checks(s: dict[str, dict[str, Any]], problems: _Problems, gpio_given: set[str]) -> None:
    kiosk, status = s["kiosk"], s["status"]
    for key in ("id", "venue_id"):
        value = kiosk[key]
        if isinstance(value, str) and _ID.fullmatch(value) is None:
            problems.add(
                f"[kiosk] {key}",
                f"{shown_value(value)} must be 1 to 64 letters, digits, '.', '_', ':' or '-' "
                "(it is a level of the MQTT topics)",
            )
    prefix = s["mqtt"]["prefix"]
    if isinstance(prefix, str) and (
        not prefix or prefix.startswith("/") or prefix.endswith("/") or {"+", "#"} & set(prefix)
    ):
        problems.add(
            "[mqtt] prefix",
            f"{shown_value(prefix)} must be topic levels like 'ashyq/v1': not empty, no leading or "
            "trailing '/', no '+' or '#'",
        )
    if kiosk["state_dir"] is None:
        kiosk["state_dir"] = os.environ.get("STATE_DIRECTORY", DEFAULT_STATE_DIR).split(":")[0]
    if status["backend"] == "http":
        url = status["url"]
        if not url:
            problems.add("[status] url", "is required when backend is 'http'")
        elif not url.startswith(("http://", "https://")):
            problems.add("[status] url", f"{shown_value(url)} must start with http:// or https://")
        elif (why := url_host(url)[1]) is not None:
            problems.add("[status] url", f"{shown_value(url)} is not a usable URL: {why}")
    if status["backend"] == "mqtt" and not s["mqtt"]["enabled"]:
        problems.add("[status] backend", "'mqtt' needs [mqtt] enabled = true")
    for url in s["mqtt"]["brokers"] or []:
        if not url.startswith(("mqtt://", "mqtts://")):
            problems.add(
                "[mqtt] brokers", f"{shown_value(url)} must start with mqtt:// or mqtts://"
            )
        elif (why := url_host(url)[1]) is not None:
            problems.add("[mqtt] brokers", f"{shown_value(url)} is not a usable URL: {why}")
    if s["mqtt"]["enabled"] and not s["mqtt"]["brokers"]:
        problems.add("[mqtt] brokers", "name at least one broker when [mqtt] is enabled")
    if bool(status["client_cert"]) != bool(status["client_key"]) and status["client_key"]:
        problems.add("[status] client_cert", "is required when client_key is set")
    _pin_conflicts(s["gpio"], gpio_given, problems)
    _web_checks(s["web"], kiosk["state_dir"], problems)


_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
ACCOUNTS_FILE = "console.accounts"
MAX_LINE_CHARS = 200


def _web_checks(web: dict[str, Any], state_dir: str, problems: _Problems) -> None:
    """The listen address, TLS or the explicit opt-in beyond loopback, the languages."""
    if web["accounts_file"] is None:
        web["accounts_file"] = str(Path(state_dir) / ACCOUNTS_FILE)
    listen = web["listen"]
    if isinstance(listen, str):
        match = _LISTEN.fullmatch(listen)
        if match is None or int(match.group(2)) > 65535:
            problems.add(
                "[web] listen",
                f"{shown_value(listen)} must be HOST:PORT, e.g. '127.0.0.1:8088' or '[::1]:8088'",
            )
        else:
            host = match.group(1).strip("[]")
            tls = bool(web["tls_cert"] and web["tls_key"])
            if not is_loopback(host) and not tls and not web["allow_plain_remote"]:
                problems.add(
                    "[web] listen",
                    f"{shown_value(listen)} is not loopback: give tls_cert and tls_key, or set "
                    "allow_plain_remote = true for a closed kiosk network",
                )
    if bool(web["tls_cert"]) != bool(web["tls_key"]):
        missing = "tls_key" if web["tls_cert"] else "tls_cert"
        problems.add(f"[web] {missing}", "is required when the other of tls_cert/tls_key is set")
    langs = web["languages"]
    if langs == []:
        problems.add("[web] languages", "name at least one language")
    elif langs and len(set(langs)) != len(langs):
        problems.add("[web] languages", "names a language twice")


def _metrics_token(web: dict[str, Any], problems: _Problems) -> str | None:
    if web["metrics_token"] and web["metrics_token_file"]:
        problems.add("[web] metrics_token", "give metrics_token or metrics_token_file, not both")
    if web["metrics_token_file"]:
        return _read_secret(web["metrics_token_file"], "[web] metrics_token_file", problems)
    token: str | None = web["metrics_token"]
    return token


def _messages(raw: Any, problems: _Problems) -> dict[str, dict[str, str]]:
    """``[web.messages.LANG] key = "line"``: a venue's own display lines, checked against the
    installed glossary so a misspelt key or language is named like any other."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("[web] messages", "must be a table of languages ([web.messages.en])")
        return {}
    from kiosk.config.schema import LANGUAGES
    from kiosk.report.glossary import glossary

    try:
        known = glossary().keys()
    except KioskError as exc:  # the installed glossary itself is broken: say so once
        problems.add("[web.messages]", str(exc))
        return {}
    out: dict[str, dict[str, str]] = {}
    for lang, lines in raw.items():
        where = f"[web.messages.{lang}]"
        if lang not in LANGUAGES:
            known_langs = ", ".join(repr(x) for x in LANGUAGES)
            problems.add(where, f"unknown language; the display speaks {known_langs}")
            continue
        if not isinstance(lines, dict):
            problems.add(where, 'must be a table of lines (key = "line")')
            continue
        for key, line in lines.items():
            if key not in known:
                problems.add(f"{where} {key}", "unknown message" + _near(key, known))
            elif not isinstance(line, str) or not line.strip():
                problems.add(f"{where} {key}", f"expected a line of text, got {shown_value(line)}")
            elif "\x00" in line or len(line) > MAX_LINE_CHARS:
                problems.add(f"{where} {key}", f"must be 1 to {MAX_LINE_CHARS} characters, no NUL")
            elif key == "opens_at" and not _one_time_placeholder(line):
                problems.add(f"{where} {key}", "must hold {time} once and no other braces")
            else:
                out.setdefault(lang, {})[key] = line
    return out


def _one_time_placeholder(line: str) -> bool:
    """A template holds ``{time}`` once and no other brace (``str.format`` would fail)."""
    rest = line.replace("{time}", "", 1)
    return "{time}" in line and "{" not in rest and "}" not in rest


def _pin_conflicts(gpio: dict[str, Any], given: set[str], problems: _Problems) -> None:
    """Two functions on one pin; a pin left at its default is the one named, as a default,
    since the technician set the other one on purpose and may not know the default."""
    pins: dict[int, str] = {}
    used = used_pins(gpio["led_kind"])
    for key in sorted(used, key=lambda k: k not in given):  # configured keys first
        pin = gpio[key]
        if pin is None or pin < 0:
            continue
        if pin in pins:
            other = pins[pin]
            name = key if key in given else f"{key} (default {pin})"
            by = f"{other} = {pin}" if other in given else f"{other} (default {pin})"
            problems.add(
                f"[gpio] {name}", f"pin {pin} is already used by {by}; give {key} a free pin"
            )
        pins[pin] = key


def _venue_secret(kiosk: dict[str, Any], problems: _Problems) -> str:
    if kiosk["venue_secret"] and kiosk["venue_secret_file"]:
        problems.add("[kiosk] venue_secret", "give venue_secret or venue_secret_file, not both")
    secret: str | None = kiosk["venue_secret"]
    if kiosk["venue_secret_file"]:
        secret = _read_secret(kiosk["venue_secret_file"], "[kiosk] venue_secret_file", problems)
    if not secret:
        if not kiosk["venue_secret_file"]:
            problems.add("[kiosk] venue_secret", "is required (or venue_secret_file)")
        return ""
    if len(secret.encode()) < 16:
        problems.add("[kiosk] venue_secret", "must be at least 16 characters")
    return secret


def _token(status: dict[str, Any], problems: _Problems) -> str | None:
    if status["token"] and status["token_file"]:
        problems.add("[status] token", "give token or token_file, not both")
    if status["token_file"]:
        return _read_secret(status["token_file"], "[status] token_file", problems)
    token: str | None = status["token"]
    return token


def _mqtt_password(mqtt: dict[str, Any], problems: _Problems) -> str | None:
    if mqtt["password"] and mqtt["password_file"]:
        problems.add("[mqtt] password", "give password or password_file, not both")
    if mqtt["password_file"]:
        return _read_secret(mqtt["password_file"], "[mqtt] password_file", problems)
    password: str | None = mqtt["password"]
    return password


def _read_secret(path: str, where: str, problems: _Problems) -> str | None:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.add(where, f"cannot read {path}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError as exc:
        problems.add(where, f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}")
        return None
    if not text:
        problems.add(where, f"{path} is empty")
    return text or None


def _minutes(text: Any, where: str, problems: _Problems) -> int | None:
    """'HH:MM' (24:00 allowed as the end of the day) to minutes; None already reported."""
    if text is None:
        return None
    ok = isinstance(text, str) and _TIME.fullmatch(text) is not None
    minutes = int(text[:2]) * 60 + int(text[3:]) if ok else 0
    if not ok or int(text[3:]) > 59 or minutes > MINUTES_PER_DAY:
        problems.add(where, f"{shown_value(text)} is not a time of day HH:MM (00:00 to 24:00)")
        return None
    return minutes


def _window(
    item: dict[str, Any], start: str, end: str, where: str, problems: _Problems
) -> Window | None:
    a = _minutes(item[start], f"{where} {start}", problems)
    b = _minutes(item[end], f"{where} {end}", problems)
    if item["days"] == []:
        problems.add(f"{where} days", "is empty: the window would never apply; name its days")
        return None
    if a is None or b is None or item["days"] is None:
        return None
    if a == b:
        problems.add(f"{where} {end}", f"the window {item[start]}-{item[end]} is empty")
        return None
    days = frozenset(DAYS.index(d) for d in item["days"])
    return Window(days, a, b)


def _policy(raw: Any, p: dict[str, Any], problems: _Problems, base: Path) -> VenuePolicy | None:
    try:
        if p["timezone"] is not None:  # a wrong type is reported already
            ZoneInfo(p["timezone"])
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a long name
        problems.add("[policy] timezone", f"{shown_value(p['timezone'])} is not a known time zone")
    windows: dict[str, list[Any]] = {"hours": [], "rule": []}
    for name, keys in TABLES.items():
        items = raw.get(name, []) if isinstance(raw, dict) else []
        if not isinstance(items, list):
            problems.add(f"[[policy.{name}]]", "must be an array of tables")
            continue
        for i, item in enumerate(items):
            where = f"[[policy.{name}]] #{i + 1}"
            if not isinstance(item, dict):
                problems.add(where, "must be a table")
                continue
            values = _section(item, keys, where, base, problems, set())
            if name == "hours":
                windows[name].append(_window(values, "open", "close", where, problems))
            else:
                w = _window(values, "from", "to", where, problems)
                rule = None  # a problem is reported already
                if w is not None and values["allowed"] is not None:
                    rule = StatusRule(w, frozenset(values["allowed"]))
                windows[name].append(rule)
    if p["anti_passback"] != "off" and not p["anti_passback_s"]:
        problems.add("[policy] anti_passback_s", "must be above 0 when anti_passback is on")
    if problems.items:
        return None
    return VenuePolicy(
        name=p["name"],
        allowed=frozenset(p["allowed"]),
        rules=tuple(windows["rule"]),
        hours=tuple(windows["hours"]),
        capacity=p["capacity"] or None,
        anti_passback=AntiPassback(p["anti_passback"]),
        anti_passback_s=p["anti_passback_s"],
        offline_rule=OfflineRule(p["offline_rule"]),
        max_pass_age_s=p["max_pass_age_s"],
        lock_s=p["lock_s"],
        timezone=p["timezone"],
    )
