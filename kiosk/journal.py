"""What the gate does, in plain words, one journal line per change (DEVELOPERS.md principle 6).

The controller says what changed, as notes published through the gate's view
(kiosk/gate/notes.py, kiosk/gate/view.py); this module, one of the view's observers, chooses
the words and the level. A change of
mode is never held back; only what can come in floods (forced passages, a device that flaps)
goes through a ``LogThrottle``. No line names a subject, a code or a pass: the journal says
what the gate did, the event store says for whom (by pseudonym).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.gate.notes import (
    CommandNote,
    DeviceNote,
    FireNote,
    ForcedNote,
    ModeNote,
    Note,
    TimeoutNote,
)
from kiosk.gate.view import GateSnapshot
from kiosk.reasons import Mode
from kiosk.throttle import LogThrottle

log = logging.getLogger("kiosk.gate")

#: Lines of one flood kind (forced passages, one device's outages) at most this often.
FLOOD_INTERVAL_S = 30.0


class GateJournal:
    """The gate's journal lines. ``fire_input`` names the fire-alarm input for the reader
    ("fire-alarm contact on GPIO25"), ``unlock_s`` is the unlock window.

    An observer of the gate's view (``GateView.subscribe``): it speaks of notes only (the
    snapshots and records are the state's, the console's and the store's to show), on the
    controller's thread, one note at a time."""

    def __init__(
        self,
        *,
        fire_input: str = "fire-alarm input",
        unlock_s: float = 5.0,
        interval_s: float = FLOOD_INTERVAL_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fire = fire_input
        self._unlock_s = unlock_s
        self._throttle = LogThrottle(interval_s, now=now)
        # Outages whose "lost" line was held back: their "back" line is held back too, so
        # the journal never says "back" for a loss it did not tell.
        self._quiet: set[str] = set()

    # -- the view's observer -----------------------------------------------------------

    def noted(self, note: Note) -> None:
        """A note from the controller, put in words by the method for its kind."""
        if isinstance(note, ModeNote):
            self.mode(note.mode, note.previous, note.cause, occupancy_reset=note.occupancy_reset)
        elif isinstance(note, FireNote):
            self.fire(note.open, mode=note.mode)
        elif isinstance(note, ForcedNote):
            self.forced_passage()
        elif isinstance(note, TimeoutNote):
            self.passage_timeout(note.cause, unlock_s=note.unlock_s)
        elif isinstance(note, DeviceNote):
            self.device(note.device, note.ok, note.detail)
        # A config_error has its own line already, naming file and key.
        elif isinstance(note, CommandNote) and note.error != "config_error":
            self.command(note.cmd, note.origin, note.ok, note.error, note.said)

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        """Snapshots say nothing the notes have not (the journal speaks of changes)."""

    def recorded(self, event: Mapping[str, Any]) -> None:
        """Records are the event store's; the journal never names a subject."""

    # -- modes: never rate-limited -----------------------------------------------------

    def mode(self, mode: Mode, previous: Mode, cause: str, *, occupancy_reset: bool) -> None:
        """The gate went to ``mode`` (from ``previous``) because of ``cause``."""
        restored = cause == "start" and mode in (Mode.EMERGENCY, Mode.LOCKDOWN)
        if mode is Mode.EMERGENCY:
            if restored:
                log.warning(
                    "EMERGENCY (as recorded before the restart): turnstile held free until "
                    "an operator resumes"
                )
            else:
                log.warning(
                    "EMERGENCY: %s is open; turnstile held free until the contact closes and "
                    "an operator resumes",
                    self._fire,
                )
        elif mode is Mode.LOCKDOWN:
            why = "as recorded before the restart" if restored else "by operator command"
            log.warning(
                "LOCKDOWN (%s): turnstile locked, every code refused until an operator resumes",
                why,
            )
        elif mode is Mode.CLOSED:
            when = " at start" if cause == "start" else ""
            log.info(
                "closed%s: outside the venue's opening hours; turnstile locked until opening time",
                when,
            )
        elif cause == "start":
            log.info("normal: deciding codes")
        elif cause == "resume":
            log.info("normal: resumed by operator command (was %s); deciding codes", previous)
        else:
            reset = "; occupancy reset to 0" if occupancy_reset else ""
            log.info("normal: opening time (was %s)%s; deciding codes", previous, reset)

    def fire(self, is_open: bool, *, mode: Mode) -> None:
        """The fire-alarm input changed without (or after) a change of mode."""
        if is_open:
            log.warning("%s is open again; the gate stays in emergency, turnstile free", self._fire)
        elif mode is Mode.EMERGENCY:
            log.info("%s closed; the turnstile stays free until an operator resumes", self._fire)
        else:
            log.info("%s closed", self._fire)

    # -- passages ----------------------------------------------------------------------

    def forced_passage(self) -> None:
        """The passage beam broke with no admission (rate-limited: a crowd can push through)."""
        ok, held = self._throttle.allow("forced_passage")
        if ok:
            log.warning(
                "forced passage: someone passed the turnstile with no admission; alarm sounded%s",
                _held(held, "forced passage"),
            )

    def passage_timeout(self, cause: str, *, unlock_s: float | None = None) -> None:
        """An unlock window (of ``unlock_s``, the journal's own if not given) ended without a
        passage (``cause``: decision, open_once, a mode, or stop)."""
        window_s = self._unlock_s if unlock_s is None else unlock_s
        if cause == "decision":
            log.info(
                "passage timeout: the admitted person did not pass within %g s; turnstile "
                "relocked, admission annulled",
                window_s,
            )
        elif cause == "open_once":
            log.info(
                "passage timeout: nobody passed within %g s of an open_once; turnstile relocked",
                window_s,
            )
        elif cause == "stop":
            log.info("admission annulled: the kiosk is stopping before the person passed")
        else:
            log.info("admission annulled: the gate went to %s before the person passed", cause)

    # -- devices: rate-limited per device ----------------------------------------------

    def device(self, name: str, ok: bool, detail: str = "") -> None:
        """A device (camera, scanner, relay) was lost or is back."""
        if ok:
            if name in self._quiet:
                self._quiet.discard(name)
                return
            log.info("%s back%s", name, f": {detail}" if detail and detail != "back" else "")
            return
        allowed, held = self._throttle.allow(f"device:{name}")
        if not allowed:
            self._quiet.add(name)
            return
        log.warning(
            "%s lost: %s%s", name, detail or "no reason given", _held(held, f"{name} outage")
        )

    # -- commands ----------------------------------------------------------------------

    def command(self, cmd: str, origin: str, ok: bool, error: str | None, detail: str = "") -> None:
        """An operator command that did something, or was refused, without a mode change."""
        if not ok:
            log.warning("command %s (%s) refused: %s", cmd, origin, error)
        elif detail:
            log.info("command %s (%s): %s", cmd, origin, detail)


def fire_input_name(pin: int) -> str:
    """The fire-alarm input as the journal names it (GPIO ``pin``; negative: none fitted)."""
    return f"fire-alarm contact on GPIO{pin}" if pin >= 0 else "fire-alarm input"


def _held(count: int, what: str) -> str:
    if not count:
        return ""
    return f" ({count} more {what}{'s' if count > 1 else ''} since the last line)"
