"""The configuration's secrets: inline or from a file, never both; read, checked, not shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.config.problems import Problems


def venue_secret(kiosk: dict[str, Any], problems: Problems) -> str:
    if kiosk["venue_secret"] and kiosk["venue_secret_file"]:
        problems.add("[kiosk] venue_secret", "give venue_secret or venue_secret_file, not both")
    secret: str | None = kiosk["venue_secret"]
    if kiosk["venue_secret_file"]:
        secret = read_secret(kiosk["venue_secret_file"], "[kiosk] venue_secret_file", problems)
    if not secret:
        if not kiosk["venue_secret_file"]:
            problems.add("[kiosk] venue_secret", "is required (or venue_secret_file)")
        return ""
    if len(secret.encode()) < 16:
        problems.add("[kiosk] venue_secret", "must be at least 16 characters")
    return secret


def token(status: dict[str, Any], problems: Problems) -> str | None:
    if status["token"] and status["token_file"]:
        problems.add("[status] token", "give token or token_file, not both")
    if status["token_file"]:
        return read_secret(status["token_file"], "[status] token_file", problems)
    token: str | None = status["token"]
    return token


def mqtt_password(mqtt: dict[str, Any], problems: Problems) -> str | None:
    if mqtt["password"] and mqtt["password_file"]:
        problems.add("[mqtt] password", "give password or password_file, not both")
    if mqtt["password_file"]:
        return read_secret(mqtt["password_file"], "[mqtt] password_file", problems)
    password: str | None = mqtt["password"]
    return password


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
