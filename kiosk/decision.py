"""The decision rules of gate.md as pure functions: no I/O, no clocks of their own."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.credentials import SignedPass
from kiosk.policy import AntiPassback, OfflineRule, VenuePolicy
from kiosk.reasons import Decision, Mode, Reason, Via


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision with its reason; ``subject`` is a pseudonym, never an ID."""

    decision: Decision
    reason: Reason
    st: str | None = None
    via: Via = Via.NONE
    subject: str | None = None
    passback: bool = False  # soft anti-passback: admitted, but recorded as a repeat

    def with_subject(self, pseudonym: str | None) -> Verdict:
        """The same verdict naming a subject."""
        return Verdict(self.decision, self.reason, self.st, self.via, pseudonym, self.passback)


def mode_verdict(mode: Mode, policy: VenuePolicy, now: float) -> Verdict | None:
    """The answer every code gets in this mode or hour, or None when codes are judged."""
    if mode is Mode.EMERGENCY:
        # The turnstile is already held free; the record says staff should look.
        return Verdict(Decision.REFER, Reason.EMERGENCY)
    if mode is Mode.LOCKDOWN:
        return Verdict(Decision.DENY, Reason.LOCKDOWN)
    if mode is Mode.CLOSED or not policy.is_open(now):
        return Verdict(Decision.DENY, Reason.CLOSED)
    return None


def offline_verdict(
    credential_pass: SignedPass | None,
    policy: VenuePolicy,
    now: float,
    *,
    clock_trusted: bool = True,
) -> tuple[str, Via] | Verdict:
    """When no answer came: the status to judge by (from the pass), or the final verdict.

    A pass decides alone only while the clock can be trusted: its age is all there is. When
    it cannot be, the refer says so (``clock_untrusted``): staff and the journal see the
    cause. The age test itself rests on that clock, so an untrusted clock wins over it.
    """
    rule = policy.offline_rule
    if rule is OfflineRule.DENY:
        return Verdict(Decision.DENY, Reason.BACKEND_UNAVAILABLE)
    if rule is OfflineRule.PASS and credential_pass is not None:
        if not clock_trusted:
            return Verdict(Decision.REFER, Reason.CLOCK_UNTRUSTED)
        if now - credential_pass.iat <= policy.max_pass_age_s:
            return credential_pass.st, Via.PASS
    return Verdict(Decision.REFER, Reason.BACKEND_UNAVAILABLE)


def pass_alone_verdict(
    credential_pass: SignedPass, *, clock_trusted: bool
) -> tuple[str, Via] | Verdict:
    """No status service configured: a pass decides on its own ``st`` (gate.md), which rests
    on the kiosk's clock alone, so an untrusted clock refers it as ``clock_untrusted``."""
    if not clock_trusted:
        return Verdict(Decision.REFER, Reason.CLOCK_UNTRUSTED)
    return credential_pass.st, Via.PASS


def status_verdict(
    st: str,
    via: Via,
    policy: VenuePolicy,
    now: float,
    *,
    occupancy: int | None,
    last_passage: float | None,
) -> Verdict:
    """Judge a known status against the venue policy, capacity and anti-passback."""
    if st not in policy.allowed_at(now):
        return Verdict(Decision.DENY, Reason.STATUS_NOT_ALLOWED, st, via)
    if policy.capacity is not None and occupancy is not None and occupancy >= policy.capacity:
        return Verdict(Decision.DENY, Reason.VENUE_FULL, st, via)
    recent = (
        policy.anti_passback is not AntiPassback.OFF
        and last_passage is not None
        and now - last_passage < policy.anti_passback_s
    )
    if recent and policy.anti_passback is AntiPassback.HARD:
        return Verdict(Decision.DENY, Reason.ANTI_PASSBACK, st, via)
    return Verdict(Decision.ADMIT, Reason.ADMITTED, st, via, passback=recent)
