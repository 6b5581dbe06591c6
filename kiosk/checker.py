"""The path from presented bytes to a verdict: credential, status, venue policy.

Used by the gate controller and by `kiosk check`. It decides but never actuates or records:
the caller owns the gate state and the records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiosk.clock import Clock
from kiosk.credentials import BareIin, CredentialParser, Refusal, SignedPass
from kiosk.decision import Verdict, mode_verdict, offline_verdict, status_verdict
from kiosk.policy import VenuePolicy
from kiosk.pseudonym import mask
from kiosk.reasons import Decision, Mode, Reason, Via
from kiosk.status.answer import LookupResult, Outcome, StatusLookup
from kiosk.status.cache import AnswerCache


@dataclass(frozen=True, slots=True)
class Checked:
    """A verdict with what the gate needs to act on it afterwards (never logged or stored raw)."""

    verdict: Verdict
    jti: str | None = None
    pass_exp: int | None = None
    masked: str | None = None


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
    ) -> None:
        self._parser = parser
        self._lookup = lookup
        self._cache = cache
        self._pseudonymize = pseudonymize
        self._last_passage = last_passage
        self._deadline_s = deadline_s
        self._clock = clock

    def check(
        self,
        data: bytes | str,
        *,
        policy: VenuePolicy,
        mode: Mode = Mode.NORMAL,
        occupancy: int | None = None,
    ) -> Checked:
        """Decide one presented code at the clock's current time."""
        now = self._clock.time()
        gate = mode_verdict(mode, policy, now)
        if gate is not None:
            return Checked(gate)
        cred = self._parser.parse(data, now)
        if isinstance(cred, Refusal):
            pseudonym = self._pseudonymize(cred.subject) if cred.subject else None
            return Checked(Verdict(Decision.DENY, cred.reason, subject=pseudonym))
        pseudonym = self._pseudonymize(cred.subject)
        signed = cred if isinstance(cred, SignedPass) else None
        jti, exp = (signed.jti, signed.exp) if signed else (None, None)
        found = self._status(cred, pseudonym, policy, now)
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
                last_passage=self._last_passage(pseudonym),
            )
        return Checked(verdict.with_subject(pseudonym), jti, exp, mask(cred.subject))

    def _status(
        self, cred: BareIin | SignedPass, pseudonym: str, policy: VenuePolicy, now: float
    ) -> tuple[str, Via] | Verdict:
        signed = cred if isinstance(cred, SignedPass) else None
        cached = self._cache.get(pseudonym)
        if cached is not None:
            return cached, Via.CACHE
        if self._lookup is None:
            # No status service at all: a pass speaks for itself, a bare IIN cannot.
            if signed is not None:
                return signed.st, Via.PASS
            return offline_verdict(None, policy, now)
        result: LookupResult = self._lookup.lookup(cred.subject, deadline_s=self._deadline_s)
        if result.outcome is Outcome.ANSWER:
            assert result.st is not None
            self._cache.put(pseudonym, result.st, result.max_age_s)
            return result.st, Via.ONLINE
        if result.outcome is Outcome.UNKNOWN:
            return Verdict(Decision.DENY, Reason.UNKNOWN_SUBJECT, via=Via.ONLINE)
        return offline_verdict(signed, policy, now)
