"""The path from presented bytes to a verdict: credential, status, venue policy.

Used by the gate controller and by `kiosk check`. It decides but never actuates or records:
the caller owns the gate state and the records. The work is split around the one slow step,
the status lookup, so the controller can run that step in a worker and stay responsive
(a fire alarm must not wait for a slow server).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.clock import Clock
from kiosk.credentials import BareIin, CredentialParser, Refusal, SignedPass
from kiosk.decision import (
    Verdict,
    mode_verdict,
    offline_verdict,
    pass_alone_verdict,
    status_verdict,
)
from kiosk.policy import VenuePolicy
from kiosk.pseudonym import mask
from kiosk.reasons import Decision, Mode, Reason, Via
from kiosk.status.answer import LookupResult, Outcome, StatusLookup
from kiosk.status.cache import AnswerCache
from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

# One journal line per this long when offline pass decisions are referred for the clock:
# a queue of people must not become a page of identical lines.
CLOCK_REFER_LOG_S = 60.0


@dataclass(frozen=True, slots=True)
class Checked:
    """A verdict with what the gate needs to act on it afterwards (never logged or stored raw)."""

    verdict: Verdict
    jti: str | None = None
    pass_exp: int | None = None
    masked: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A valid credential whose status must still be asked for."""

    credential: BareIin | SignedPass
    pseudonym: str


class Checker:
    """Evaluates presented codes; every dependency is passed in."""

    def __init__(
        self,
        *,
        parser: CredentialParser,
        lookup: StatusLookup | None,
        cache: AnswerCache,
        pseudonymize: Callable[[str], str],
        last_passage: Callable[[str], float | None],
        deadline_s: float,
        clock: Clock,
        clock_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self._parser = parser
        self._lookup = lookup
        self._cache = cache
        self._pseudonymize = pseudonymize
        self._last_passage = last_passage
        self._deadline_s = deadline_s
        self._clock = clock
        self._clock_trusted = clock_trusted
        self._throttle = LogThrottle(CLOCK_REFER_LOG_S)

    @property
    def has_lookup(self) -> bool:
        """Whether a status service is configured."""
        return self._lookup is not None

    def check(
        self,
        data: bytes | str,
        *,
        policy: VenuePolicy,
        mode: Mode = Mode.NORMAL,
        occupancy: int | None = None,
    ) -> Checked:
        """Decide one presented code at the clock's current time, looking up if needed."""
        started = self.begin(data, policy=policy, mode=mode, occupancy=occupancy)
        if isinstance(started, Checked):
            return started
        result = self.lookup(started)
        return self.finish(started, result, policy=policy, mode=mode, occupancy=occupancy)

    def begin(
        self,
        data: bytes | str,
        *,
        policy: VenuePolicy,
        mode: Mode = Mode.NORMAL,
        occupancy: int | None = None,
    ) -> Checked | Pending:
        """Everything before the lookup: a final answer, or what to look up."""
        now = self._clock.time()
        gate = mode_verdict(mode, policy, now)
        if gate is not None:
            return Checked(gate)
        cred = self._parser.parse(data, now)
        if isinstance(cred, Refusal):
            pseudonym = self._pseudonymize(cred.subject) if cred.subject else None
            return Checked(Verdict(Decision.DENY, cred.reason, subject=pseudonym))
        pending = Pending(cred, self._pseudonymize(cred.subject))
        signed = cred if isinstance(cred, SignedPass) else None
        cached = self._cache.get(pending.pseudonym)
        if cached is not None:
            return self._judge(pending, (cached, Via.CACHE), policy, now, occupancy)
        if self._lookup is None:
            # No status service at all: a pass speaks for itself (while the clock can be
            # trusted), a bare IIN cannot.
            found = (
                pass_alone_verdict(signed, clock_trusted=self._clock_trusted())
                if signed
                else offline_verdict(None, policy, now)
            )
            return self._judge(pending, self._said(found), policy, now, occupancy)
        return pending

    def lookup(self, pending: Pending) -> LookupResult:
        """The slow step: ask the status service (blocks up to the deadline)."""
        assert self._lookup is not None
        return self._lookup.lookup(pending.credential.subject, deadline_s=self._deadline_s)

    def finish(
        self,
        pending: Pending,
        result: LookupResult,
        *,
        policy: VenuePolicy,
        mode: Mode = Mode.NORMAL,
        occupancy: int | None = None,
    ) -> Checked:
        """Decide with the lookup's result; the mode is judged again, as it may have changed
        while the lookup ran (a fire alarm overrides an in-progress decision)."""
        now = self._clock.time()
        gate = mode_verdict(mode, policy, now)
        if gate is not None:
            return Checked(gate)
        found: tuple[str, Via] | Verdict
        if result.outcome is Outcome.ANSWER:
            assert result.st is not None
            self._cache.put(pending.pseudonym, result.st, result.max_age_s)
            found = (result.st, Via.ONLINE)
        elif result.outcome is Outcome.UNKNOWN:
            found = Verdict(Decision.DENY, Reason.UNKNOWN_SUBJECT, via=Via.ONLINE)
        else:
            signed = pending.credential if isinstance(pending.credential, SignedPass) else None
            trusted = signed is None or self._clock_trusted()
            found = self._said(offline_verdict(signed, policy, now, clock_trusted=trusted))
        return self._judge(pending, found, policy, now, occupancy)

    def _said(self, found: tuple[str, Via] | Verdict) -> tuple[str, Via] | Verdict:
        """``found``, after one journal line (rate-limited) when it is a refer for the clock."""
        if isinstance(found, Verdict) and found.reason is Reason.CLOCK_UNTRUSTED:
            ok, held = self._throttle.allow("clock")
            if ok:
                more = f" ({held} more since the last line)" if held else ""
                log.warning("offline pass decision referred: the clock is not trusted%s", more)
        return found

    def _judge(
        self,
        pending: Pending,
        found: tuple[str, Via] | Verdict,
        policy: VenuePolicy,
        now: float,
        occupancy: int | None,
    ) -> Checked:
        if isinstance(found, Verdict):
            verdict = found
        else:
            st, via = found
            verdict = status_verdict(
                st,
                via,
                policy,
                now,
                occupancy=occupancy,
                last_passage=self._last_passage(pending.pseudonym),
            )
        cred = pending.credential
        signed = cred if isinstance(cred, SignedPass) else None
        return Checked(
            verdict.with_subject(pending.pseudonym),
            signed.jti if signed else None,
            signed.exp if signed else None,
            mask(cred.subject),
        )
