"""The glossary installed with the kiosk says every reason, with display.md's exact lines."""

from __future__ import annotations

import re

import pytest

from kiosk.errors import KioskError
from kiosk.reasons import Reason
from kiosk.report.glossary import LANGS, glossary, parse
from support import REPO

DISPLAY = REPO.parent / "shared" / "spec" / "display.md"


def spec_tables() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """display.md's "Messages" table (key -> kk, ru, en) and "Reason lines" (reason -> key)."""
    if not DISPLAY.exists():
        pytest.skip(f"{DISPLAY} is not here (the spec lives beside the repository)")
    messages: dict[str, dict[str, str]] = {}
    reasons: dict[str, str] = {}
    text = DISPLAY.read_text(encoding="utf-8")
    reason_part = text[text.index("Reason lines") : text.index("## Messages")]
    message_part = text[text.index("## Messages") :].split("\n## ")[0]
    for cells in _rows(message_part):
        if len(cells) == 4 and re.fullmatch(r"`\w+`", cells[0]):
            messages[cells[0].strip("`")] = dict(zip(LANGS, cells[1:], strict=True))
    for cells in _rows(reason_part):
        if len(cells) == 3 and cells[0].startswith("`"):
            key = re.fullmatch(r"`(\w+)`", cells[1])
            for name in re.findall(r"`(\w+)`", cells[0]):
                # "as the mode": closed, lockdown and emergency show the mode's own line.
                reasons[name] = key.group(1) if key else name
    assert messages and reasons, "display.md's tables were not found"
    return messages, reasons


def _rows(part: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in part.splitlines()
        if line.startswith("|")
    ]


def test_every_reason_of_the_enum_has_a_line_in_every_language():
    g = glossary()
    for reason in Reason:
        for lang in LANGS:
            line = g.line(reason.value, lang)
            assert line and line != reason.value, (reason, lang)


def test_messages_are_display_mds_word_for_word():
    messages, _ = spec_tables()
    assert glossary().messages == messages


def test_reasons_show_the_keys_display_md_gives():
    _, reasons = spec_tables()
    g = glossary()
    assert {r: g.reasons[r] for r in reasons} == reasons
    # The one reason display.md's reason table leaves out is the admit screen's own line.
    assert set(g.reasons) - set(reasons) == {"admitted"}
    assert g.reasons["admitted"] == "admitted"


def test_see_staff_follows_display_md():
    g = glossary()
    assert {r for r, yes in g.see_staff.items() if yes} == {
        "unknown_subject",
        "replayed",
        "backend_unavailable",
        "clock_untrusted",
        "anti_passback",
    }


def test_an_unknown_reason_is_shown_as_itself():
    assert glossary().line("a_reason_from_a_newer_kiosk", "ru") == "a_reason_from_a_newer_kiosk"


def test_a_broken_glossary_names_the_file_and_the_entry():
    with pytest.raises(KioskError, match=r"g.toml: \[messages.closed\] lacks ru"):
        parse({"messages": {"closed": {"kk": "Жабық", "en": "Closed"}}}, where="g.toml")
    with pytest.raises(KioskError, match=r"g.toml: \[reasons\] closed: key 'shut' has no message"):
        parse({"reasons": {"closed": {"key": "shut"}}}, where="g.toml")


def test_the_glossary_is_package_data():
    import tomllib

    text = (REPO / "pyproject.toml").read_text()
    data = tomllib.loads(text)["tool"]["setuptools"]["package-data"]
    assert "glossary/*.toml" in data["kiosk"]
    assert (REPO / "kiosk" / "glossary" / "reasons.toml").is_file()
