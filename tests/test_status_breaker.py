"""The breaker on its own, with a fake clock and a scripted probe."""

from __future__ import annotations

import logging

from kiosk.status.breaker import Breaker


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_probe_mode_stays_offline_until_the_probe_succeeds():
    clock = FakeMonotonic()
    answers = [False, True]
    breaker = Breaker(probe=lambda: answers.pop(0), now=clock, background=False)
    assert breaker.allow() and breaker.due_in() is None
    breaker.failed("timeout")
    assert not breaker.allow()
    clock.t += 1.0
    assert breaker.tick() is False and not breaker.allow()
    clock.t += 2.0
    assert breaker.tick() is True and breaker.allow()


def test_retry_after_holds_the_probe_back():
    clock = FakeMonotonic()
    probes = []
    breaker = Breaker(probe=lambda: probes.append(1) or True, now=clock, background=False)
    breaker.failed("HTTP 429", not_before_s=30.0)
    clock.t += 29.0
    assert breaker.tick() is False and probes == []
    clock.t += 1.0
    assert breaker.tick() is True and probes == [1]


def test_trial_mode_lets_one_lookup_through_per_interval():
    clock = FakeMonotonic()
    breaker = Breaker(now=clock)
    breaker.failed("no response within the deadline")
    assert [breaker.allow() for _ in range(3)] == [False, False, False]
    clock.t += 1.0
    assert [breaker.allow() for _ in range(3)] == [True, False, False]
    breaker.failed("no response within the deadline")
    clock.t += 1.0
    assert not breaker.allow()  # backed off to 2 s
    clock.t += 1.0
    assert breaker.allow()


def test_a_flapping_service_is_said_at_most_once_per_interval(caplog):
    clock = FakeMonotonic()
    breaker = Breaker(now=clock, background=False)
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            breaker.failed("timeout")
            breaker.succeeded()
        clock.t += 60.0
        breaker.failed("timeout")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "status service unreachable (timeout); deciding offline",
        "status service reachable again",
        "status service unreachable (timeout); deciding offline"
        " (service changed state 4 more times)",
    ]


def test_a_probe_that_raises_keeps_the_kiosk_offline(caplog):
    def probe() -> bool:
        raise RuntimeError("bug")

    clock = FakeMonotonic()
    breaker = Breaker(probe=probe, now=clock, background=False)
    breaker.failed("timeout")
    clock.t += 1.0
    with caplog.at_level(logging.ERROR):
        assert breaker.tick() is False
    assert "probe failed: RuntimeError" in caplog.text
