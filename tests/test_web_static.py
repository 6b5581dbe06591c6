"""The display page's own files (display.md): legible at 2 m, no animation but the spinner
and the emergency flash, no sound, nothing from elsewhere, an icon for every screen."""

from __future__ import annotations

import re

from kiosk.web.pages import static_file

ICONS = {"qr", "spinner", "check", "cross", "hand", "exit", "padlock", "clock", "warning"}


def text(name: str) -> str:
    body = static_file(name)
    assert body is not None, name
    return body.decode()


def rule(css: str, selector: str) -> str:
    match = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", css)
    assert match, selector
    return match.group(1)


def vh(declarations: str, prop: str) -> float:
    match = re.search(rf"(?<![-\w]){prop}:\s*([0-9.]+)vh", declarations)
    assert match, (prop, declarations)
    return float(match.group(1))


def test_the_main_line_is_a_tenth_of_the_screen_and_the_rest_a_twentieth():
    css = text("display.css")
    assert vh(rule(css, ".line.main p"), "font-size") >= 10
    assert vh(rule(css, ".line.second p"), "font-size") >= 5
    assert vh(rule(css, ".holder"), "font-size") >= 5


def test_only_the_spinner_and_the_emergency_flash_move():
    css = re.sub(r"/\*.*?\*/", "", text("display.css"), flags=re.S)
    frames = set(re.findall(r"@keyframes\s+([\w-]+)", css))
    assert frames == {"spin", "flash"}
    users = re.findall(r"([^{}]+)\{[^}]*animation:\s*([\w-]+)", css)
    assert {(sel.strip(), name) for sel, name in users} == {
        (".screen-checking .icon", "spin"),
        (".flash", "flash"),
    }
    assert "transition" not in css


def test_every_icon_the_screens_name_is_shipped_and_known_to_the_page():
    js = text("display.js")
    listed = set(re.findall(r'"(\w+)"', re.search(r"const ICONS = \[([^\]]*)\]", js).group(1)))
    assert listed == ICONS
    for icon in ICONS:
        svg = text(f"icon-{icon}.svg")
        assert svg.startswith("<svg") and "<title>" in svg  # a name for assistive technology


def test_the_page_makes_no_sound_and_loads_nothing_from_elsewhere():
    for name in ("display.html", "display.js", "display.css"):
        body = text(name)
        assert not re.search(r"https?://", body), name
        assert "<audio" not in body and "Audio(" not in body and "speechSynthesis" not in body
        assert "@import" not in body and "url(" not in body
    html = text("display.html")
    assert re.search(r"<script[^>]*>\s*[^<\s]", html) is None
    assert not re.search(r"\son\w+=", html) and "style=" not in html
