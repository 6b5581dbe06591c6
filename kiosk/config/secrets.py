"""The configuration's secrets: inline or from a file, never both; read, checked, not shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.config.problems import Problems


def inline_or_file(
    values: dict[str, Any], section: str, key: str, problems: Problems
) -> str | None:
    """A secret given as ``key`` in the file or as a file named by ``key_file``: never both."""
    file_key = f"{key}_file"
    if values[key] and values[file_key]:
        problems.add(f"[{section}] {key}", f"give {key} or {file_key}, not both")
    if values[file_key]:
        return read_secret(values[file_key], f"[{section}] {file_key}", problems)
    inline: str | None = values[key]
    return inline


def venue_secret(kiosk: dict[str, Any], problems: Problems) -> str:
    """The venue secret (required, at least 16 characters): keyed pseudonyms rest on it."""
    secret = inline_or_file(kiosk, "kiosk", "venue_secret", problems)
    if not secret:
        if not kiosk["venue_secret_file"]:
            problems.add("[kiosk] venue_secret", "is required (or venue_secret_file)")
        return ""
    if len(secret.encode()) < 16:
        problems.add("[kiosk] venue_secret", "must be at least 16 characters")
    return secret


def token(status: dict[str, Any], problems: Problems) -> str | None:
    """The status service's bearer token, if any."""
    return inline_or_file(status, "status", "token", problems)


def mqtt_password(mqtt: dict[str, Any], problems: Problems) -> str | None:
    """The MQTT password, if any."""
    return inline_or_file(mqtt, "mqtt", "password", problems)


def read_secret(path: str, where: str, problems: Problems) -> str | None:
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
