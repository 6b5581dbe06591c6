"""The whole path from presented text to a verdict, against the real simulated service."""

from __future__ import annotations

import logging
import time

import pytest

from kiosk.clock import FakeClock
from kiosk.config import load_config
from kiosk.core import build_core
from kiosk.reasons import Decision, Mode, Reason, Via
from support import write_config


@pytest.fixture
def make_core(tmp_path, status_service):
    made = []

    def make(url: str | None = "service", clock=None, trusted=lambda: True, **sections):
        url = status_service.url if url == "service" else url
        cfg = load_config(write_config(tmp_path, url, **sections))
        core = build_core(
            cfg, clock=clock or FakeClock(time.time()), persistent=True, clock_trusted=trusted
        )
        made.append(core)
        return core

    yield make
    for core in made:
        core.close()


def person(population, st):
    return population.with_status(st)[0]


def check(core, text, **kw):
    return core.checker.check(text, policy=core.config.policy, **kw)


def test_bare_iin_online(make_core, population):
    core = make_core()
    p = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
    checked = check(core, p.sub[4:] + "\r\n")
    v = checked.verdict
    assert (v.decision, v.reason, v.st, v.via) == (
        Decision.ADMIT,
        Reason.ADMITTED,
        "green",
        "online",
    )
    assert v.subject == core.pseudonymize(p.sub) and len(v.subject) == 20
    assert checked.masked == p.sub[4:6] + "********" + p.sub[-2:]


def test_second_lookup_comes_from_cache(make_core, population, status_service):
    core = make_core()
    p = next(p for p in population.with_status("blue") if p.sub.startswith("iin:"))
    check(core, p.sub[4:])
    before = status_service.stats.requests
    assert check(core, p.sub[4:]).verdict.via is Via.CACHE
    assert status_service.stats.requests == before


def test_online_status_overrides_the_pass(make_core, population, issuer, status_service):
    core = make_core()
    p = person(population, "red")
    v = check(core, issuer.mint(p.sub, "green", iat=int(core.clock.time()))).verdict
    assert (v.decision, v.reason, v.st, v.via) == (
        Decision.DENY,
        Reason.STATUS_NOT_ALLOWED,
        "red",
        "online",
    )


def test_unknown_subject(make_core):
    v = check(make_core(), "921029350851").verdict
    assert (v.decision, v.reason) == (Decision.DENY, Reason.UNKNOWN_SUBJECT)


@pytest.mark.parametrize(
    ("rule", "bare", "signed"),
    [
        (
            "deny",
            (Decision.DENY, Reason.BACKEND_UNAVAILABLE),
            (Decision.DENY, Reason.BACKEND_UNAVAILABLE),
        ),
        (
            "refer",
            (Decision.REFER, Reason.BACKEND_UNAVAILABLE),
            (Decision.REFER, Reason.BACKEND_UNAVAILABLE),
        ),
        ("pass", (Decision.REFER, Reason.BACKEND_UNAVAILABLE), (Decision.ADMIT, Reason.ADMITTED)),
    ],
)
def test_offline_rules_when_service_is_down(
    make_core, population, issuer, status_service, rule, bare, signed
):
    status_service.faults.set(down=True)
    core = make_core(policy={"offline_rule": rule}, status={"deadline_ms": 200})
    p = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
    v = check(core, p.sub[4:]).verdict
    assert (v.decision, v.reason, v.via) == (*bare, Via.NONE)
    v = check(core, issuer.mint(p.sub, "green", iat=int(core.clock.time()))).verdict
    assert (v.decision, v.reason) == signed
    if rule == "pass":
        assert v.via is Via.PASS


def test_offline_pass_too_old_is_referred(make_core, population, issuer, status_service):
    status_service.faults.set(down=True)
    core = make_core(
        policy={"offline_rule": "pass", "max_pass_age_s": 60}, status={"deadline_ms": 200}
    )
    now = int(core.clock.time())
    text = issuer.mint(person(population, "green").sub, "green", iat=now - 61, valid_s=600)
    v = check(core, text).verdict
    assert (v.decision, v.reason) == (Decision.REFER, Reason.BACKEND_UNAVAILABLE)


def test_no_status_service_configured(make_core, population, issuer):
    core = make_core(url=None)
    p = person(population, "blue")
    v = check(core, issuer.mint(p.sub, "blue", iat=int(core.clock.time()))).verdict
    assert (v.decision, v.via, v.st) == (Decision.ADMIT, Via.PASS, "blue")
    v = check(core, "921029350851").verdict
    assert (v.decision, v.reason) == (Decision.REFER, Reason.BACKEND_UNAVAILABLE)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Mode.EMERGENCY, (Decision.REFER, Reason.EMERGENCY)),
        (Mode.LOCKDOWN, (Decision.DENY, Reason.LOCKDOWN)),
        (Mode.CLOSED, (Decision.DENY, Reason.CLOSED)),
    ],
)
def test_modes_answer_every_code(make_core, mode, expected, status_service):
    core = make_core()
    for text in ("garbage", "921029350851"):
        v = check(core, text, mode=mode).verdict
        assert (v.decision, v.reason) == expected
    assert status_service.stats.requests == 0


def test_venue_full_and_passback(make_core, population, tmp_path):
    core = make_core(policy={"capacity": 2, "anti_passback": "hard", "anti_passback_s": 60})
    p = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
    assert check(core, p.sub[4:], occupancy=2).verdict.reason is Reason.VENUE_FULL
    core.passback.record_passage(core.pseudonymize(p.sub), core.clock.time() - 10)
    assert check(core, p.sub[4:], occupancy=0).verdict.reason is Reason.ANTI_PASSBACK
    core.clock.advance(60)
    assert check(core, p.sub[4:], occupancy=0).verdict.reason is Reason.ADMITTED


def test_replayed_pass(make_core, population, issuer):
    core = make_core()
    now = int(core.clock.time())
    text = issuer.mint(person(population, "green").sub, "green", iat=now, jti="abcdefgh12")
    assert check(core, text).verdict.decision is Decision.ADMIT
    core.replay.mark_used("abcdefgh12", now + 330)
    assert check(core, text).verdict.reason is Reason.REPLAYED


def test_untrusted_clock_refers_an_offline_pass_and_says_so_once(
    make_core, population, issuer, status_service, caplog
):
    status_service.faults.set(down=True)
    core = make_core(
        policy={"offline_rule": "pass"}, status={"deadline_ms": 200}, trusted=lambda: False
    )
    p = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
    with caplog.at_level(logging.WARNING, logger="kiosk.checker"):
        for _ in range(3):
            v = check(core, issuer.mint(p.sub, "green", iat=int(core.clock.time()))).verdict
            assert (v.decision, v.reason) == (Decision.REFER, Reason.CLOCK_UNTRUSTED)
            assert v.via is Via.NONE
        # A bare IIN never rested on the clock: still backend_unavailable.
        v = check(core, p.sub[4:]).verdict
        assert (v.decision, v.reason) == (Decision.REFER, Reason.BACKEND_UNAVAILABLE)
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.checker"]
    assert lines == ["offline pass decision referred: the clock is not trusted"]
    assert p.sub[4:] not in caplog.text


@pytest.mark.parametrize("rule", ["deny", "refer"])
def test_untrusted_clock_changes_nothing_under_other_offline_rules(
    make_core, population, issuer, status_service, rule
):
    status_service.faults.set(down=True)
    core = make_core(
        policy={"offline_rule": rule}, status={"deadline_ms": 200}, trusted=lambda: False
    )
    p = person(population, "green")
    v = check(core, issuer.mint(p.sub, "green", iat=int(core.clock.time()))).verdict
    assert v.reason is Reason.BACKEND_UNAVAILABLE


def test_no_status_service_and_an_untrusted_clock(make_core, population, issuer):
    """gate.md: a pass decided on its own rests on the kiosk's clock alone."""
    core = make_core(url=None, trusted=lambda: False)
    p = person(population, "blue")
    v = check(core, issuer.mint(p.sub, "blue", iat=int(core.clock.time()))).verdict
    assert (v.decision, v.reason) == (Decision.REFER, Reason.CLOCK_UNTRUSTED)
    v = check(core, "921029350851").verdict
    assert (v.decision, v.reason) == (Decision.REFER, Reason.BACKEND_UNAVAILABLE)


def test_an_online_answer_needs_no_clock(make_core, population, issuer):
    core = make_core(policy={"offline_rule": "pass"}, trusted=lambda: False)
    p = person(population, "green")
    v = check(core, issuer.mint(p.sub, "green", iat=int(core.clock.time()))).verdict
    assert (v.decision, v.via) == (Decision.ADMIT, Via.ONLINE)
