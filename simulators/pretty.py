"""`kiosk sim --pretty`: one readable line per decision (and per change of mode, per command).

For a person watching the simulation in a terminal: the local time, the decision, the reason
in words (the display's own catalogue, kiosk/glossary/reasons.toml), where the code came
from, how long the decision took, what the relay and the light did, how many are inside, and
the scenario step's note. The JSON lines (``--json``) stay the machine-readable form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from kiosk.report.glossary import glossary

_WORDS = {"admit": "ADMIT", "deny": "DENY", "refer": "REFER"}
# ANSI colours for a terminal: never the only sign (the word says it too).
_COLOURS = {"admit": "\033[32m", "deny": "\033[31m", "refer": "\033[33m", "mode": "\033[36m"}
_RESET = "\033[0m"
_WIDTH = 6
# How the status was known, when not from the status service just now (kiosk/reasons.py Via).
_VIA = {
    "cache": "status from cache",
    "pass": "status from the pass (offline)",
}  # the longest word, so the columns line up


@dataclass(frozen=True)
class GateLook:
    """What the gate showed when the decision was recorded (from the observable gate)."""

    turnstile: str  # locked, free, ...
    light: str  # off, admit, deny, refer, ...
    occupancy: int | None
    capacity: int | None = None


def local_time(ts: str, tz: tzinfo | None = None) -> str:
    """``HH:MM:SS`` in local time (``tz``, or the machine's) of an event's RFC 3339 ``ts``."""
    try:
        at = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts  # a record from a newer kiosk: show it as it came
    return at.astimezone(tz).strftime("%H:%M:%S")


def event_line(
    event: Mapping[str, Any],
    *,
    gate: GateLook | None = None,
    note: str | None = None,
    colour: bool = False,
    tz: tzinfo | None = None,
) -> str | None:
    """The readable line of ``event``, or None when it gets none (passages, alarms...: the
    decision, mode and command lines tell the story; ``--json`` has everything)."""
    kind = event.get("type")
    if kind == "decision":
        return decision_line(event, gate=gate, note=note, colour=colour, tz=tz)
    if kind == "mode" and event.get("mode") != event.get("previous"):
        word = _paint("MODE", "mode", colour)
        cause = event.get("cause")
        text = f"{local_time(str(event.get('ts', '')), tz)}  {word}  {event.get('mode')}"
        return text + (f" ({cause})" if cause else "") + (f"  · {note}" if note else "")
    if kind == "command":
        word = _paint("CMD".ljust(_WIDTH), "mode", colour)
        who = event.get("account")
        origin = f"{event.get('origin', '?')}" + (f" ({who})" if who else "")
        result = "ok" if event.get("ok") else f"refused ({event.get('error')})"
        ts = local_time(str(event.get("ts", "")), tz)
        return f"{ts}  {word}  {event.get('cmd')} from {origin}: {result}"
    return None


def decision_line(
    event: Mapping[str, Any],
    *,
    gate: GateLook | None = None,
    note: str | None = None,
    colour: bool = False,
    tz: tzinfo | None = None,
) -> str:
    """One decision in words, e.g. ``14:02:11  ADMIT   Entry allowed · camera · 4.8 ms ·
    relay free, light admit · inside 3/40 · a normal morning``. No subject, no code."""
    decision = str(event.get("decision", "?"))
    reason = str(event.get("reason", "?"))
    words = glossary().line(reason, "en")
    if glossary().see_staff.get(reason):
        words += " (see staff)"
    if reason == "admitted" and event.get("st"):
        words += f" ({event['st']})"
    parts = [words, str(event.get("source", "?"))]
    latency = event.get("latency_ms")
    if isinstance(latency, int | float):
        parts.append(f"{latency:.1f} ms")
    via = event.get("via")
    if via in _VIA:
        parts.append(_VIA[via])
    if gate is not None:
        parts.append(f"relay {gate.turnstile}, light {gate.light}")
        if gate.occupancy is not None:
            cap = f"/{gate.capacity}" if gate.capacity else ""
            parts.append(f"inside {gate.occupancy}{cap}")
    if note:
        parts.append(note)
    word = _paint(_WORDS.get(decision, decision.upper()).ljust(_WIDTH), decision, colour)
    return f"{local_time(str(event.get('ts', '')), tz)}  {word}  " + " · ".join(parts)


def _paint(word: str, kind: str, colour: bool) -> str:
    code = _COLOURS.get(kind)
    return f"{code}{word}{_RESET}" if colour and code else word
