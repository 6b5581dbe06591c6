"""Small pure helpers of the loader and the commissioning checks: reading the TOML file
without ever crashing, URLs, pins, and quoting a value in a problem line."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kiosk.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
"""A kiosk's configuration is a few kilobytes; anything far larger is not one."""


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML document, or a ConfigError saying why there is none (never a crash)."""
    try:
        if not path.is_dir() and path.exists() and not path.is_file():
            # A FIFO would block the reader forever, a device could stream without end.
            raise ConfigError([f"{path}: not a regular file"])
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except ValueError as exc:  # a NUL byte in the path
        raise ConfigError([f"{path!r}: cannot read: {exc}"]) from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_FILE_BYTES} bytes: not a configuration"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([f"{path}: not valid TOML: tables or arrays nested too deeply"]) from exc
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc


def shown_value(value: Any) -> str:
    """``repr(value)``, cut short: a problem line quotes the value, not a whole file."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


USED_PINS = (
    "relay",
    "buzzer",
    "passage_sensor",
    "exit_sensor",
    "fire_alarm",
    "led_red",
    "led_green",
)


def used_pins(led_kind: str) -> list[str]:
    """The [gpio] keys whose pins a configuration with this ``led_kind`` drives or reads."""
    return [*USED_PINS, "led_blue" if led_kind == "rgb" else "led_amber"]


def url_host(url: str) -> tuple[str | None, str | None]:
    """(host, None) of a URL, or (None, why it is not a usable URL)."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises for a port out of range
    except ValueError as exc:
        return None, str(exc)
    if not host:
        return None, "names no host"
    return host, None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (localhost, 127.0.0.0/8, ::1), judged from the text
    alone, never by resolving it: any other name could be anywhere. The one test of this for
    the configuration, the web server and the simulation's broker guard."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
