"""The gate's reasons in plain words, from the glossary installed with the kiosk.

The file (kiosk/glossary/reasons.toml, package data) holds display.md's two tables: which
message key each reason shows, and each message in Kazakh, Russian and English, plus the
templates of lines that carry a value (the opening time of a closed venue). A report says a
reason with the same line the person at the gate read; the display reads the same glossary,
with the venue's own lines (configuration ``[web.messages.LANG]``) laid over it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from kiosk.errors import KioskError

LANGS = ("kk", "ru", "en")
GLOSSARY_FILE = "reasons.toml"


@dataclass(frozen=True)
class Glossary:
    """Reason -> message key, and message key -> line per language."""

    reasons: dict[str, str]
    see_staff: dict[str, bool]
    messages: dict[str, dict[str, str]]
    #: Lines with a ``{time}`` placeholder (key -> line per language), e.g. ``opens_at``.
    templates: dict[str, dict[str, str]] | None = None

    def keys(self) -> list[str]:
        """Every line a venue may override: the messages and the templates."""
        return [*self.messages, *(self.templates or {})]

    def text(self, key: str, lang: str, **values: str) -> str:
        """Message or template ``key`` in ``lang``, a template filled with ``values``."""
        if key in self.messages:
            return self.messages[key][lang]
        return (self.templates or {})[key][lang].format(**values)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, str]]) -> Glossary:
        """The glossary with a venue's own lines (language -> key -> line) laid over it;
        the configuration loader has checked languages and keys already."""
        messages = {k: dict(v) for k, v in self.messages.items()}
        templates = {k: dict(v) for k, v in (self.templates or {}).items()}
        for lang, lines in overrides.items():
            for key, line in lines.items():
                (messages if key in messages else templates)[key][lang] = line
        return replace(self, messages=messages, templates=templates)

    def line(self, reason: str, lang: str = "en") -> str:
        """The display line of ``reason`` in ``lang``; an unknown reason is shown as itself
        (a newer kiosk may have recorded a reason this one does not know)."""
        key = self.reasons.get(reason)
        if key is None:
            return reason
        return self.messages[key][lang]


def parse(data: dict[str, Any], *, where: str) -> Glossary:
    """Check and build the glossary from the parsed TOML; raise KioskError naming ``where``."""
    reasons: dict[str, str] = {}
    see_staff: dict[str, bool] = {}
    messages: dict[str, dict[str, str]] = {}
    for key, lines in data.get("messages", {}).items():
        missing = [lang for lang in LANGS if not isinstance(lines.get(lang), str)]
        if missing:
            raise KioskError(f"{where}: [messages.{key}] lacks {', '.join(missing)}")
        messages[key] = {lang: lines[lang] for lang in LANGS}
    templates: dict[str, dict[str, str]] = {}
    for key, lines in data.get("templates", {}).items():
        missing = [lang for lang in LANGS if not isinstance(lines.get(lang), str)]
        if missing:
            raise KioskError(f"{where}: [templates.{key}] lacks {', '.join(missing)}")
        if key in messages:
            raise KioskError(f"{where}: [templates.{key}] is a message already")
        templates[key] = {lang: lines[lang] for lang in LANGS}
    for reason, entry in data.get("reasons", {}).items():
        key = entry.get("key")
        if key not in messages:
            raise KioskError(f"{where}: [reasons] {reason}: key {key!r} has no message")
        reasons[reason] = key
        if "see_staff" in entry:
            see_staff[reason] = bool(entry["see_staff"])
    return Glossary(reasons, see_staff, messages, templates)


@cache
def glossary() -> Glossary:
    """The installed glossary (read once)."""
    source = resources.files("kiosk").joinpath("glossary", GLOSSARY_FILE)
    where = f"kiosk/glossary/{GLOSSARY_FILE}"
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KioskError(f"{where}: cannot read the installed glossary: {exc}") from exc
    return parse(data, where=where)
