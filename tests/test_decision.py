"""The decision rules of gate.md: modes and hours, the offline rule table, status, capacity,
anti-passback."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.credentials import SignedPass
from kiosk.decision import (
    Verdict,
    mode_verdict,
    offline_verdict,
    pass_alone_verdict,
    status_verdict,
)
from kiosk.policy import AntiPassback, OfflineRule, StatusRule, VenuePolicy, Window
from kiosk.reasons import Decision, Mode, Reason, Via

ALMATY = ZoneInfo("Asia/Almaty")
NOW = 1_700_000_000.0
GREEN = frozenset({"green"})
GREEN_BLUE = frozenset({"green", "blue"})
WEEKDAYS = frozenset(range(5))
WEEKEND = frozenset({5, 6})


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ALMATY).timestamp()


def signed(st: str = "green", iat: float = NOW) -> SignedPass:
    return SignedPass(
        subject="iin:921029350851", st=st, iat=int(iat), exp=int(iat) + 300, jti="abcdEFGH"
    )


def judge(st: str, policy: VenuePolicy, now: float = NOW, **kw: object) -> Verdict:
    kw.setdefault("occupancy", None)
    kw.setdefault("last_passage", None)
    return status_verdict(st, Via.ONLINE, policy, now, **kw)  # type: ignore[arg-type]


# -- modes and opening hours ----------------------------------------------------------------


def test_normal_mode_open_venue_judges_codes() -> None:
    assert mode_verdict(Mode.NORMAL, VenuePolicy(), NOW) is None


def test_emergency_refers_every_code() -> None:
    assert mode_verdict(Mode.EMERGENCY, VenuePolicy(), NOW) == Verdict(
        Decision.REFER, Reason.EMERGENCY
    )


def test_lockdown_denies_every_code() -> None:
    assert mode_verdict(Mode.LOCKDOWN, VenuePolicy(), NOW) == Verdict(
        Decision.DENY, Reason.LOCKDOWN
    )


def test_closed_mode_denies_every_code() -> None:
    assert mode_verdict(Mode.CLOSED, VenuePolicy(), NOW) == Verdict(Decision.DENY, Reason.CLOSED)


OPEN_10_TO_22 = VenuePolicy(hours=(Window(frozenset(range(7)), 600, 1320),), timezone="Asia/Almaty")


def test_outside_opening_hours_every_code_is_closed() -> None:
    assert mode_verdict(Mode.NORMAL, OPEN_10_TO_22, at(2024, 6, 3, 9, 59)) == Verdict(
        Decision.DENY, Reason.CLOSED
    )
    assert mode_verdict(Mode.NORMAL, OPEN_10_TO_22, at(2024, 6, 3, 10, 0)) is None
    assert mode_verdict(Mode.NORMAL, OPEN_10_TO_22, at(2024, 6, 3, 22, 0)) == Verdict(
        Decision.DENY, Reason.CLOSED
    )


def test_emergency_and_lockdown_win_over_opening_hours() -> None:
    night = at(2024, 6, 3, 3, 0)
    assert mode_verdict(Mode.EMERGENCY, OPEN_10_TO_22, night).reason is Reason.EMERGENCY
    assert mode_verdict(Mode.LOCKDOWN, OPEN_10_TO_22, night).reason is Reason.LOCKDOWN


# -- the offline rule table of gate.md, row by row ------------------------------------------


def offline(rule: OfflineRule, **kw: object) -> VenuePolicy:
    return VenuePolicy(offline_rule=rule, **kw)  # type: ignore[arg-type]


def test_row_deny_bare_iin() -> None:
    assert offline_verdict(None, offline(OfflineRule.DENY), NOW) == Verdict(
        Decision.DENY, Reason.BACKEND_UNAVAILABLE
    )


def test_row_deny_signed_pass() -> None:
    assert offline_verdict(signed(), offline(OfflineRule.DENY), NOW) == Verdict(
        Decision.DENY, Reason.BACKEND_UNAVAILABLE
    )


def test_row_refer_bare_iin() -> None:
    assert offline_verdict(None, offline(OfflineRule.REFER), NOW) == Verdict(
        Decision.REFER, Reason.BACKEND_UNAVAILABLE
    )


def test_row_refer_signed_pass() -> None:
    assert offline_verdict(signed(), offline(OfflineRule.REFER), NOW) == Verdict(
        Decision.REFER, Reason.BACKEND_UNAVAILABLE
    )


def test_row_pass_bare_iin_is_referred() -> None:
    assert offline_verdict(None, offline(OfflineRule.PASS), NOW) == Verdict(
        Decision.REFER, Reason.BACKEND_UNAVAILABLE
    )


@pytest.mark.parametrize("status", ["green", "blue", "yellow", "red"])
def test_row_pass_fresh_signed_pass_decides_by_its_own_st(status: str) -> None:
    assert offline_verdict(signed(status), offline(OfflineRule.PASS), NOW) == (status, Via.PASS)


def test_row_pass_max_pass_age_boundary_default_300() -> None:
    policy = offline(OfflineRule.PASS)
    pass_ = signed(iat=NOW)
    assert offline_verdict(pass_, policy, NOW + 300) == ("green", Via.PASS)
    assert offline_verdict(pass_, policy, NOW + 300.001) == Verdict(
        Decision.REFER, Reason.BACKEND_UNAVAILABLE
    )
    assert offline_verdict(pass_, policy, NOW + 301) == Verdict(
        Decision.REFER, Reason.BACKEND_UNAVAILABLE
    )


def test_row_pass_max_pass_age_is_configurable() -> None:
    policy = offline(OfflineRule.PASS, max_pass_age_s=60)
    pass_ = signed(iat=NOW)
    assert offline_verdict(pass_, policy, NOW + 60) == ("green", Via.PASS)
    assert offline_verdict(pass_, policy, NOW + 61).reason is Reason.BACKEND_UNAVAILABLE


def test_row_pass_pass_issued_slightly_in_the_future_is_fresh() -> None:
    # Within the clock leeway a pass may be "younger than zero".
    assert offline_verdict(signed(iat=NOW + 20), offline(OfflineRule.PASS), NOW) == (
        "green",
        Via.PASS,
    )


def test_offline_status_from_the_pass_is_then_judged_by_the_venue() -> None:
    policy = offline(OfflineRule.PASS, allowed=GREEN_BLUE)
    for status, decision, reason in [
        ("green", Decision.ADMIT, Reason.ADMITTED),
        ("blue", Decision.ADMIT, Reason.ADMITTED),
        ("yellow", Decision.DENY, Reason.STATUS_NOT_ALLOWED),
        ("red", Decision.DENY, Reason.STATUS_NOT_ALLOWED),
    ]:
        got = offline_verdict(signed(status), policy, NOW)
        assert isinstance(got, tuple)
        st, via = got
        v = status_verdict(st, via, policy, NOW, occupancy=None, last_passage=None)
        assert (v.decision, v.reason, v.st, v.via) == (decision, reason, status, Via.PASS)


# -- status against the venue policy --------------------------------------------------------


@pytest.mark.parametrize("status", ["green", "blue"])
def test_allowed_status_admitted(status: str) -> None:
    assert judge(status, VenuePolicy(allowed=GREEN_BLUE)) == Verdict(
        Decision.ADMIT, Reason.ADMITTED, status, Via.ONLINE
    )


@pytest.mark.parametrize("status", ["yellow", "red", "blue"])
def test_status_not_allowed_denied(status: str) -> None:
    assert judge(status, VenuePolicy(allowed=GREEN)) == Verdict(
        Decision.DENY, Reason.STATUS_NOT_ALLOWED, status, Via.ONLINE
    )


def test_via_is_kept() -> None:
    for via in Via:
        v = status_verdict("green", via, VenuePolicy(), NOW, occupancy=None, last_passage=None)
        assert v.via is via


CINEMA = VenuePolicy(
    allowed=GREEN_BLUE, rules=(StatusRule(Window(WEEKEND), GREEN),), timezone="Asia/Almaty"
)


def test_cinema_blue_admitted_on_weekdays_denied_at_weekends() -> None:
    monday, saturday = at(2024, 6, 3, 19), at(2024, 6, 1, 19)
    assert judge("blue", CINEMA, monday).decision is Decision.ADMIT
    assert judge("blue", CINEMA, saturday).reason is Reason.STATUS_NOT_ALLOWED
    assert judge("green", CINEMA, saturday).decision is Decision.ADMIT


def test_cinema_weekend_begins_at_local_midnight() -> None:
    assert judge("blue", CINEMA, at(2024, 5, 31, 23, 59)).decision is Decision.ADMIT
    assert judge("blue", CINEMA, at(2024, 6, 1, 0, 0)).reason is Reason.STATUS_NOT_ALLOWED


# -- capacity -------------------------------------------------------------------------------


def test_capacity() -> None:
    policy = VenuePolicy(capacity=100)
    assert judge("green", policy, occupancy=0).decision is Decision.ADMIT
    assert judge("green", policy, occupancy=99).decision is Decision.ADMIT
    assert judge("green", policy, occupancy=100) == Verdict(
        Decision.DENY, Reason.VENUE_FULL, "green", Via.ONLINE
    )
    assert judge("green", policy, occupancy=150).reason is Reason.VENUE_FULL


def test_no_capacity_or_no_count_never_full() -> None:
    assert judge("green", VenuePolicy(), occupancy=10**6).decision is Decision.ADMIT
    assert judge("green", VenuePolicy(capacity=1), occupancy=None).decision is Decision.ADMIT


def test_capacity_zero_is_always_full() -> None:
    assert judge("green", VenuePolicy(capacity=0), occupancy=0).reason is Reason.VENUE_FULL


# -- anti-passback --------------------------------------------------------------------------

N = 60.0


def test_hard_anti_passback_denies_within_n_seconds() -> None:
    policy = VenuePolicy(anti_passback=AntiPassback.HARD, anti_passback_s=N)
    for ago in (0.0, 1.0, 30.0, N - 0.001):
        assert judge("green", policy, last_passage=NOW - ago) == Verdict(
            Decision.DENY, Reason.ANTI_PASSBACK, "green", Via.ONLINE
        )


def test_hard_anti_passback_admits_after_n_seconds() -> None:
    policy = VenuePolicy(anti_passback=AntiPassback.HARD, anti_passback_s=N)
    for ago in (N, N + 1, 10_000.0):
        v = judge("green", policy, last_passage=NOW - ago)
        assert v == Verdict(Decision.ADMIT, Reason.ADMITTED, "green", Via.ONLINE)
        assert v.passback is False


def test_soft_anti_passback_admits_and_records() -> None:
    policy = VenuePolicy(anti_passback=AntiPassback.SOFT, anti_passback_s=N)
    v = judge("green", policy, last_passage=NOW - 10)
    assert (v.decision, v.reason, v.passback) == (Decision.ADMIT, Reason.ADMITTED, True)
    v = judge("green", policy, last_passage=NOW - N - 1)
    assert (v.decision, v.reason, v.passback) == (Decision.ADMIT, Reason.ADMITTED, False)


def test_anti_passback_off_or_never_passed() -> None:
    off = VenuePolicy(anti_passback=AntiPassback.OFF, anti_passback_s=N)
    v = judge("green", off, last_passage=NOW - 1)
    assert (v.decision, v.passback) == (Decision.ADMIT, False)
    hard = VenuePolicy(anti_passback=AntiPassback.HARD, anti_passback_s=N)
    v = judge("green", hard, last_passage=None)
    assert (v.decision, v.passback) == (Decision.ADMIT, False)


def test_anti_passback_does_not_admit_a_status_not_allowed() -> None:
    policy = VenuePolicy(allowed=GREEN, anti_passback=AntiPassback.SOFT, anti_passback_s=N)
    assert judge("red", policy, last_passage=NOW - 1).reason is Reason.STATUS_NOT_ALLOWED


# -- every verdict pairs its reason with the decision gate.md gives it ----------------------

_DECISION_OF = {
    Reason.ADMITTED: {Decision.ADMIT},
    Reason.EMERGENCY: {Decision.REFER},
    Reason.BACKEND_UNAVAILABLE: {Decision.DENY, Decision.REFER},
}


def _allowed_pairing(v: Verdict) -> bool:
    return v.decision in _DECISION_OF.get(v.reason, {Decision.DENY})


def test_every_verdict_pairs_reason_and_decision() -> None:
    verdicts: list[Verdict] = []
    for mode in Mode:
        for policy in (VenuePolicy(), OPEN_10_TO_22):
            v = mode_verdict(mode, policy, at(2024, 6, 3, 3))
            if v is not None:
                verdicts.append(v)
    for rule, pass_, age in itertools.product(OfflineRule, (None, signed()), (0, 1000)):
        got = offline_verdict(pass_, offline(rule), NOW + age)
        if isinstance(got, Verdict):
            verdicts.append(got)
    for status, ap, cap, occ, ago in itertools.product(
        ("green", "blue", "yellow", "red"),
        AntiPassback,
        (None, 1),
        (None, 0, 1),
        (None, 1.0, 100.0),
    ):
        policy = VenuePolicy(allowed=GREEN, anti_passback=ap, anti_passback_s=N, capacity=cap)
        last = None if ago is None else NOW - ago
        verdicts.append(judge(status, policy, occupancy=occ, last_passage=last))
    assert verdicts
    assert all(_allowed_pairing(v) for v in verdicts), [
        v for v in verdicts if not _allowed_pairing(v)
    ]


def test_with_subject_names_a_pseudonym_and_keeps_the_rest() -> None:
    policy = VenuePolicy(anti_passback=AntiPassback.SOFT, anti_passback_s=N)
    v = judge("blue", policy, last_passage=NOW - 1)
    named = v.with_subject("0123456789abcdef0123")
    assert named.subject == "0123456789abcdef0123"
    assert (named.decision, named.reason, named.st, named.via, named.passback) == (
        v.decision,
        v.reason,
        v.st,
        v.via,
        v.passback,
    )


def test_row_pass_untrusted_clock_refers_clock_untrusted() -> None:
    policy = offline(OfflineRule.PASS)
    assert offline_verdict(signed(), policy, NOW, clock_trusted=False) == Verdict(
        Decision.REFER, Reason.CLOCK_UNTRUSTED
    )
    # The pass's age rests on the same clock: an untrusted clock is the cause named.
    assert offline_verdict(signed(), policy, NOW + 10_000, clock_trusted=False) == Verdict(
        Decision.REFER, Reason.CLOCK_UNTRUSTED
    )
    # A bare IIN never rested on the clock.
    assert offline_verdict(None, policy, NOW, clock_trusted=False) == Verdict(
        Decision.REFER, Reason.BACKEND_UNAVAILABLE
    )


@pytest.mark.parametrize("rule", [OfflineRule.DENY, OfflineRule.REFER])
def test_untrusted_clock_only_matters_when_the_pass_would_decide(rule: OfflineRule) -> None:
    got = offline_verdict(signed(), offline(rule), NOW, clock_trusted=False)
    assert isinstance(got, Verdict) and got.reason is Reason.BACKEND_UNAVAILABLE


def test_pass_alone_rests_on_the_clock() -> None:
    assert pass_alone_verdict(signed("blue"), clock_trusted=True) == ("blue", Via.PASS)
    assert pass_alone_verdict(signed(), clock_trusted=False) == Verdict(
        Decision.REFER, Reason.CLOCK_UNTRUSTED
    )
