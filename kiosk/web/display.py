"""The traveller display's screens (display.md): one gate snapshot in, one screen out.

The server computes the screen; the page only draws it (kiosk/web/static/display.js). A
screen is a small JSON object (WEB.md): which screen, its icon and colour, whether it
flashes, the lines in every configured language, the holder in masked form at most, and
until when a result stays. Nothing in it can carry a subject, a name, an IIN, a passport
number or the code's text: the snapshot holds none of them but the masked holder, and even
that is shown only when it has the masked form.

Which screen, strongest first: emergency, lockdown, out of order (the relay is faulty, or
every configured reader is gone), closed, checking (a lookup still running after 150 ms),
the newest result while the gate's light shows it, idle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.gate.view import DOWN, OK, GateSnapshot, LastDecision
from kiosk.policy import VenuePolicy
from kiosk.report.glossary import LANGS, Glossary

CHECKING_AFTER_S = 0.150  # display.md: a quick answer never flashes the spinner
READERS = ("camera", "scanner")
#: The light that shows each result; a result is up while the light still shows it.
RESULT_LIGHTS = {"admit": "admit", "deny": "deny", "refer": "refer"}
MODE_SCREENS = ("emergency", "lockdown", "closed")
#: The masked holder as kiosk.pseudonym.mask makes it; anything else is never shown.
_MASKED = re.compile(r"(?:[A-Z]{3} )?[0-9A-Z]{0,2}\*{4,}[0-9A-Z]{0,2}")
#: A little slack past the light's own end before the display gives up on a result by itself
#: (a lost "light back to idle"): one person's result never stays up for the next person.
RESULT_SLACK_S = 1.0

Screen = dict[str, Any]


@dataclass(frozen=True)
class DisplaySettings:
    """What the venue configured about its display, and the gate's light timings."""

    langs: tuple[str, ...] = LANGS
    show_holder: bool = True
    #: The readers the configuration enables; None: those whose health is not ``off``.
    readers: tuple[str, ...] | None = None
    unlock_s: float = 5.0
    deny_light_s: float = 2.0
    refer_light_s: float = 3.0

    def light_s(self, decision: str) -> float:
        """How long the light shows ``decision`` (gate.md; admit: at most the window)."""
        return {"admit": self.unlock_s, "deny": self.deny_light_s}.get(decision, self.refer_light_s)


class Screens:
    """Builds the screen of a snapshot with one glossary (the venue's lines laid over)."""

    def __init__(
        self,
        glossary: Glossary,
        settings: DisplaySettings | None = None,
        *,
        opening: Callable[[float], str | None] | None = None,
    ) -> None:
        self.glossary = glossary
        self.settings = settings or DisplaySettings()
        self._opening = opening

    # -- the screen -------------------------------------------------------------------

    def screen(self, snap: GateSnapshot, now: float) -> Screen:
        """The screen for ``snap`` at epoch time ``now``."""
        mode_screen = self._mode_screen(snap.mode)
        if mode_screen in ("emergency", "lockdown"):
            return self._mode(mode_screen, snap)
        if self.out_of_order(snap):
            lines = ["out_of_order", "see_staff"]
            return self._build(snap, "out_of_order", "warning", "grey", lines)
        if mode_screen == "closed":
            return self._mode("closed", snap, now)
        if self._checking(snap, now):
            return self._build(snap, "checking", "spinner", "neutral", ["checking"])
        result = self._result(snap, now)
        if result is not None:
            return result
        idle = ["show_code", "offline"] if snap.offline else ["show_code"]
        return self._build(snap, "idle", "qr", "neutral", idle)

    def lost(self) -> Screen:
        """The out-of-order screen the page shows by itself once it has lost the kiosk."""
        snap = GateSnapshot(version=-1)
        return self._build(snap, "out_of_order", "warning", "grey", ["out_of_order", "see_staff"])

    def next_change(self, snap: GateSnapshot, now: float) -> float | None:
        """Seconds from ``now`` until this snapshot's screen changes by time alone (the
        spinner's 150 ms, a result's end), or None: a stream wakes then even with no news."""
        times: list[float] = []
        if snap.checking and snap.checking_since is not None:
            due = snap.checking_since + CHECKING_AFTER_S - now
            if due > 0:
                times.append(due)
        last = snap.last_decision
        if last is not None and self._showing(snap, last):
            due = last.at + self.settings.light_s(last.decision) + RESULT_SLACK_S - now
            if due > 0:
                times.append(due)
        return min(times) if times else None

    def out_of_order(self, snap: GateSnapshot) -> bool:
        """A device the gate needs is down: the relay, or every reader the kiosk has (none
        works and one is down; a reader not yet reported, ``off``, is not "gone")."""
        if snap.health.get("relay") == DOWN:
            return True
        readers = self.settings.readers
        if readers is None:
            readers = READERS
        states = [snap.health.get(r, "off") for r in readers]
        return OK not in states and DOWN in states

    # -- the parts --------------------------------------------------------------------

    @staticmethod
    def _mode_screen(mode: str) -> str | None:
        return mode if mode in MODE_SCREENS else None

    def _mode(self, mode: str, snap: GateSnapshot, now: float | None = None) -> Screen:
        if mode == "emergency":
            return self._build(snap, "emergency", "exit", "amber", ["emergency"], flash=True)
        if mode == "lockdown":
            return self._build(snap, "lockdown", "padlock", "red", ["lockdown"])
        lines: list[str | tuple[str, dict[str, str]]] = ["closed"]
        opens = self._opening(now) if self._opening is not None and now is not None else None
        if opens:
            lines.append(("opens_at", {"time": opens}))
        return self._build(snap, "closed", "clock", "red", lines)

    def _checking(self, snap: GateSnapshot, now: float) -> bool:
        if not snap.checking:
            return False
        if snap.checking_since is None:
            return True  # a publisher that gives no start: something is running, say so
        return now - snap.checking_since >= CHECKING_AFTER_S

    def _showing(self, snap: GateSnapshot, last: LastDecision) -> bool:
        """The gate's light still shows this decision (and nothing else has happened)."""
        return RESULT_LIGHTS.get(last.decision) == snap.light

    def _result(self, snap: GateSnapshot, now: float) -> Screen | None:
        last = snap.last_decision
        if last is None or not self._showing(snap, last):
            return None
        until = last.at + self.settings.light_s(last.decision)
        if now > until + RESULT_SLACK_S:
            return None
        if last.reason in MODE_SCREENS:
            return self._mode(last.reason, snap, now)
        holder = last.holder_masked if self.settings.show_holder else None
        if holder is not None and _MASKED.fullmatch(holder) is None:
            holder = None  # not the masked form: never risk showing more of a person
        if last.decision == "admit":
            lines: list[str | tuple[str, dict[str, str]]] = ["admitted", "welcome"]
            return self._build(snap, "admit", "check", "green", lines, holder=holder, until=until)
        key = self.glossary.reasons.get(last.reason)
        if last.decision == "refer":
            lines = [key, "see_staff"] if key else ["see_staff"]
            return self._build(snap, "refer", "hand", "amber", lines, holder=holder, until=until)
        if key is None:
            lines = ["see_staff"]  # a reason this kiosk does not know: staff can tell
        elif self.glossary.see_staff.get(last.reason, False):
            lines = [key, "see_staff"]
        else:
            lines = [key]
        return self._build(snap, "deny", "cross", "red", lines, holder=holder, until=until)

    def _build(
        self,
        snap: GateSnapshot,
        screen: str,
        icon: str,
        colour: str,
        lines: Sequence[str | tuple[str, dict[str, str]]],
        *,
        flash: bool = False,
        holder: str | None = None,
        until: float | None = None,
    ) -> Screen:
        langs = self.settings.langs
        out = []
        for line in lines:
            key, values = (line, {}) if isinstance(line, str) else line
            text = {lang: self.glossary.text(key, lang, **values) for lang in langs}
            out.append({"key": key, "text": text})
        return {
            "screen": screen,
            "icon": icon,
            "colour": colour,
            "flash": flash,
            "lines": out,
            "langs": list(langs),
            "holder": holder,
            "offline": snap.offline,
            "until": None if until is None else round(until, 3),
            "version": snap.version,
        }


def next_opening(policy: VenuePolicy, now: float) -> str | None:
    """The venue's next opening as local ``HH:MM`` when it is within a day, else None (the
    closed screen then says only "closed": a weekday would need one more line per language)."""
    if not policy.hours:
        return None
    tz = ZoneInfo(policy.timezone)
    local = datetime.fromtimestamp(now, tz)
    best: datetime | None = None
    for window in policy.hours:
        for days in range(0, 2):
            day = (local + timedelta(days=days)).date()
            if day.weekday() not in window.days:
                continue
            start = datetime(
                day.year,
                day.month,
                day.day,
                window.start_min // 60 % 24,
                window.start_min % 60,
                tzinfo=tz,
            )
            if start.timestamp() > now and (best is None or start < best):
                best = start
    if best is None or best.timestamp() - now > 86_400:
        return None
    return best.strftime("%H:%M")
