"""What the gate does, in plain words, one journal line per change (DEVELOPERS.md principle 6).

The controller says what changed; this module chooses the words and the level. A change of
mode is never held back; only what can come in floods (forced passages, a device that flaps)
goes through a ``LogThrottle``. No line names a subject, a code or a pass: the journal says
what the gate did, the event store says for whom (by pseudonym).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kiosk.reasons import Mode
from kiosk.throttle import LogThrottle

log = logging.getLogger("kiosk.gate")

#: Lines of one flood kind (forced passages, one device's outages) at most this often.
FLOOD_INTERVAL_S = 30.0


class GateJournal:
    """The gate's journal lines. ``fire_input`` names the fire-alarm input for the reader
    ("fire-alarm contact on GPIO25"), ``unlock_s`` is the unlock window."""

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

    def passage_timeout(self, cause: str) -> None:
        """An unlock window ended without a passage (``cause``: decision, open_once, a mode,
        or stop)."""
        if cause == "decision":
            log.info(
                "passage timeout: the admitted person did not pass within %g s; turnstile "
                "relocked, admission annulled",
                self._unlock_s,
            )
        elif cause == "open_once":
            log.info(
                "passage timeout: nobody passed within %g s of an open_once; turnstile relocked",
                self._unlock_s,
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


def _held(count: int, what: str) -> str:
    if not count:
        return ""
    return f" ({count} more {what}{'s' if count > 1 else ''} since the last line)"
