"""The admission window (gate.md, Turnstile): one admission, one passage.

An admission frees the turnstile for ``unlock_s``; the passage sensor ends the window early
(the admission counts); the timer ends it without one (annulled: the pass may be shown
again). A turnstile that will not lock is retried every ``RELOCK_RETRY_S``. One person may
break the beam twice (a bag, a hesitation): a break within ``PASSAGE_HOLDOFF_S`` of a passage
is the same person, not a forced passage.

Only the controller's loop calls this; it holds no lock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.clock import Clock
from kiosk.devices import Turnstile
from kiosk.timers import Timers

RELOCK_RETRY_S = 0.2
PASSAGE_HOLDOFF_S = 0.5
UNLOCK_TIMER = "unlock"
RELOCK_TIMER = "relock"


@dataclass
class Admission:
    """An open unlock window: one admission, one passage."""

    ticket: int
    subject: str | None
    jti: str | None
    pass_exp: int | None
    cause: str  # "decision" or "open_once"


class Beam(enum.Enum):
    """What a break of the passage beam was."""

    ADMITTED = "admitted"  # the admitted person (or the open_once) went through
    HELD_OFF = "held_off"  # the same person still in the beam
    UNADMITTED = "unadmitted"  # nobody was admitted: forced (or free, in emergency)


class AdmissionWindow:
    """The turnstile's one open window. ``relay_state(ok, detail)`` is told of every relock
    attempt (the controller turns failures and recoveries into device lines)."""

    def __init__(
        self,
        *,
        turnstile: Turnstile,
        timers: Timers,
        clock: Clock,
        unlock_s: float,
        relay_state: Callable[[bool, str], None],
    ) -> None:
        self._turnstile = turnstile
        self._timers = timers
        self._clock = clock
        self._unlock_s = unlock_s
        self._relay_state = relay_state
        self._tickets = 0
        self._last_passage = float("-inf")
        self.admission: Admission | None = None

    @property
    def is_open(self) -> bool:
        """Whether someone is admitted and not yet through."""
        return self.admission is not None

    def open(self, admission: Admission) -> None:
        """Free the turnstile for one passage."""
        assert self.admission is None, "one admission at a time"
        self._tickets += 1
        admission.ticket = self._tickets
        # The window's end is set before the relay moves: whatever fails next, it relocks.
        self.admission = admission
        self._timers.set(UNLOCK_TIMER, self._clock.monotonic() + self._unlock_s, admission.ticket)
        self._turnstile.free(hold_s=self._unlock_s)

    def close(self, *, relock: bool) -> Admission | None:
        """End the window (passage, timeout, a mode); relock unless the way must stay free."""
        admission, self.admission = self.admission, None
        self._timers.cancel(UNLOCK_TIMER)
        if relock:
            self.relock()
        return admission

    def expired(self, ticket: object) -> bool:
        """Whether the unlock timer carrying ``ticket`` ends the window open now."""
        return self.admission is not None and self.admission.ticket == ticket

    def relock(self) -> None:
        """Lock the turnstile; on failure keep trying: a turnstile left free must not last."""
        try:
            self._turnstile.lock()
            self._timers.cancel(RELOCK_TIMER)
        except Exception as exc:  # noqa: BLE001 - a relay driver failing in any way: retried, said once
            detail = f"could not lock the turnstile ({type(exc).__name__}); retrying"
            self._relay_state(False, detail)
            self._timers.set(RELOCK_TIMER, self._clock.monotonic() + RELOCK_RETRY_S)
        else:
            self._relay_state(True, "turnstile locked")

    def stop_relocking(self) -> None:
        """The way is held free (emergency): no retry may lock it again."""
        self._timers.cancel(RELOCK_TIMER)

    def beam(self, now: float) -> Beam:
        """Classify a break of the passage beam at monotonic ``now``."""
        if self.admission is None and now - self._last_passage < PASSAGE_HOLDOFF_S:
            return Beam.HELD_OFF
        self._last_passage = now
        return Beam.ADMITTED if self.admission is not None else Beam.UNADMITTED
