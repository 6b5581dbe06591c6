"""The checks of the [web] and [homeassistant] sections beyond each key's own: the listen
address and TLS, the languages, the venue's display lines, the discovery prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kiosk.config.problems import Problems, near
from kiosk.config.secrets import inline_or_file
from kiosk.config.values import is_loopback, shown_value
from kiosk.errors import KioskError

_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
ACCOUNTS_FILE = "console.accounts"
MAX_LINE_CHARS = 200


def web_checks(web: dict[str, Any], state_dir: str, problems: Problems) -> None:
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


def metrics_token(web: dict[str, Any], problems: Problems) -> str | None:
    """The bearer token /metrics asks for beyond loopback, if any."""
    return inline_or_file(web, "web", "metrics_token", problems)


def messages(raw: Any, problems: Problems) -> dict[str, dict[str, str]]:
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
                problems.add(f"{where} {key}", "unknown message" + near(key, known))
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


def homeassistant(s: dict[str, dict[str, Any]], problems: Problems) -> None:
    """The discovery prefix is where Home Assistant listens: topic levels, no wildcards."""
    prefix = s["homeassistant"]["prefix"]
    if isinstance(prefix, str) and (
        not prefix or "" in prefix.split("/") or {"+", "#"} & set(prefix)
    ):
        problems.add(
            "[homeassistant] prefix",
            f"{shown_value(prefix)} must be topic levels like 'homeassistant': not empty, no "
            "empty level (no leading, trailing or double '/'), no MQTT wildcard '+' or '#'",
        )
    if s["homeassistant"]["enabled"] and not s["mqtt"]["enabled"]:
        problems.add("[homeassistant] enabled", "needs [mqtt] enabled = true (it publishes there)")
