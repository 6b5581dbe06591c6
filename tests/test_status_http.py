"""The HTTP status client against the real simulated service, fault by fault."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from kiosk.status.answer import Outcome
from kiosk.status.http import RETRY_AFTER_MAX_S, HttpStatusClient, retry_after_s
from support import TOKEN


def _green(population):
    return population.with_status("green")[0].sub


def test_answer_and_connection_reuse(status_service, population):
    client = HttpStatusClient(status_service.url, token=TOKEN)
    sub = _green(population)
    for _ in range(5):
        result = client.lookup(sub, deadline_s=2.0)
        assert result.outcome is Outcome.ANSWER and result.st == "green"
        assert result.max_age_s == 300
    assert status_service.stats.connections == 1
    client.close()


def test_unknown_subject(status_service):
    client = HttpStatusClient(status_service.url, token=TOKEN)
    result = client.lookup("iin:921029350851", deadline_s=2.0)
    assert result.outcome is Outcome.UNKNOWN


def test_wrong_token_is_no_answer_and_logged_loudly(status_service, population, caplog):
    client = HttpStatusClient(status_service.url, token="wrong")
    with caplog.at_level(logging.ERROR):
        result = client.lookup(_green(population), deadline_s=2.0)
    assert result.outcome is Outcome.NO_ANSWER
    assert "HTTP 401" in caplog.text
    assert status_service.stats.requests == 1  # misconfiguration is not retried


@pytest.mark.parametrize("fault", [{"garbage": True}, {"error_rate": 1.0}, {"down": True}])
def test_faults_are_no_answer_within_deadline(status_service, population, fault):
    status_service.faults.set(**fault)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    t0 = time.monotonic()
    result = client.lookup(_green(population), deadline_s=0.3)
    elapsed = time.monotonic() - t0
    assert result.outcome is Outcome.NO_ANSWER
    assert elapsed < 0.3 + 0.5  # generous: a busy CI machine, but never a hang


def test_slow_service_ends_at_deadline(status_service, population):
    status_service.faults.set(latency_ms=3000)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    t0 = time.monotonic()
    result = client.lookup(_green(population), deadline_s=0.2)
    assert result.outcome is Outcome.NO_ANSWER
    assert time.monotonic() - t0 < 1.5


def test_transient_5xx_is_retried_inside_deadline(status_service, population):
    status_service.faults.set(error_rate=0.5)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    answers = sum(
        client.lookup(_green(population), deadline_s=2.0).outcome is Outcome.ANSWER
        for _ in range(10)
    )
    assert answers >= 9  # each lookup may retry several times within two seconds
    assert status_service.stats.by_status.get(503, 0) > 0


def test_429_retry_after_is_honoured(status_service, population):
    status_service.faults.set(status_429=True, retry_after_s=30)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    assert client.lookup(_green(population), deadline_s=0.5).outcome is Outcome.NO_ANSWER
    before = status_service.stats.requests
    status_service.faults.reset()
    # Within Retry-After the client does not ask again: no answer at once, no request.
    assert client.lookup(_green(population), deadline_s=0.5).outcome is Outcome.NO_ANSWER
    assert status_service.stats.requests == before


def test_short_retry_after_waits_inside_the_deadline(status_service, population):
    status_service.faults.set(status_429=True, retry_after_s=0)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    status_service.faults.set(status_429=False)
    assert client.lookup(_green(population), deadline_s=1.0).outcome is Outcome.ANSWER


def test_refused_connection_is_no_answer():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpStatusClient(f"http://127.0.0.1:{port}")
    assert client.lookup("iin:921029350851", deadline_s=0.2).outcome is Outcome.NO_ANSWER


def test_subject_never_in_url_or_logs(status_service, population, caplog):
    sub = _green(population)
    status_service.faults.set(error_rate=1.0)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    with caplog.at_level(logging.DEBUG):
        client.lookup(sub, deadline_s=0.2)
    assert sub.split(":")[-1] not in caplog.text


def test_fetch_keys(status_service):
    client = HttpStatusClient(status_service.url, token=TOKEN)
    doc = client.fetch_keys()
    assert doc is not None and doc["keys"][0]["kid"] == "sim1"


def test_retry_after_forms():
    assert retry_after_s("3") == 3.0
    assert retry_after_s(None) == 1.0
    assert retry_after_s("soon") == 1.0
    assert retry_after_s("-5") == 1.0
    assert retry_after_s("1e9") == 1.0
    assert retry_after_s("\u00b2") == 1.0  # a digit to str.isdigit, not to float
    assert retry_after_s("Mon, 99 Foo 2024 99:99:99 GMT") == 1.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_retry_after_is_capped_in_both_forms():
    assert retry_after_s("99999999") == RETRY_AFTER_MAX_S == 60.0
    now = 1_700_000_000.0
    assert retry_after_s("Tue, 14 Nov 2023 22:13:30 GMT", now=now) == 10.0
    assert retry_after_s("Fri, 01 Jan 2100 00:00:00 GMT", now=now) == RETRY_AFTER_MAX_S
    assert retry_after_s("Tue, 14 Nov 2023 22:13:30 -0000", now=now) == 1.0  # zone unknown


class FakeMonotonic:
    """The breaker's clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _client(url, *, clock=None, **kw):
    return HttpStatusClient(
        url, token=TOKEN, now=clock or FakeMonotonic(), probe_background=False, **kw
    )


def test_huge_retry_after_holds_the_kiosk_offline_only_up_to_the_cap(status_service, population):
    status_service.faults.set(status_429=True, retry_after_s=99_999_999)
    clock = FakeMonotonic()
    client = _client(status_service.url, clock=clock)
    assert client.lookup(_green(population), deadline_s=0.5).outcome is Outcome.NO_ANSWER
    status_service.faults.reset()
    assert client.breaker is not None and not client.breaker.online
    clock.t += RETRY_AFTER_MAX_S - 1
    before = status_service.stats.requests
    assert client.breaker.tick() is False  # not yet: the service asked for a pause
    assert client.lookup(_green(population), deadline_s=0.5).outcome is Outcome.NO_ANSWER
    assert status_service.stats.requests == before
    clock.t += 2
    assert client.breaker.tick() is True
    assert client.lookup(_green(population), deadline_s=0.5).outcome is Outcome.ANSWER
    client.close()


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ({"down": True}, "connection closed without an answer"),
        ({"error_rate": 1.0}, "HTTP 503"),
        ({"status_429": True, "retry_after_s": 5}, "HTTP 429, Retry-After 5 s"),
        ({"latency_ms": 2000}, "timeout"),
    ],
)
def test_service_down_later_lookups_end_at_once(status_service, population, caplog, fault, cause):
    status_service.faults.set(**fault)
    client = _client(status_service.url)
    sub = _green(population)
    with caplog.at_level(logging.WARNING):
        first = client.lookup(sub, deadline_s=0.3)
        asked = status_service.stats.requests
        later = [client.lookup(sub, deadline_s=0.3) for _ in range(5)]
    assert first.outcome is Outcome.NO_ANSWER and first.detail == cause
    assert all(r.outcome is Outcome.NO_ANSWER for r in later)
    assert {r.detail for r in later} == {"status service down"}
    assert status_service.stats.requests == asked  # no network round-trip while down
    lines = [r.getMessage() for r in caplog.records if "status service" in r.getMessage()]
    assert lines == [f"status service unreachable ({cause}); deciding offline"]
    assert sub.split(":")[-1] not in caplog.text
    client.close()


def test_refused_connection_opens_the_breaker(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = _client(f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING):
        first = client.lookup("iin:921029350851", deadline_s=0.2)
        second = client.lookup("iin:921029350851", deadline_s=0.2)
    assert first.detail == "connection refused"
    assert second.detail == "status service down"  # decided without trying to connect
    assert "status service unreachable (connection refused); deciding offline" in caplog.text
    assert "921029350851" not in caplog.text
    client.close()


def test_background_probe_brings_the_kiosk_back_online(status_service, population, caplog):
    """The real probe thread: waited for by condition (generous), never by a timed assert."""
    status_service.faults.set(down=True)
    client = HttpStatusClient(status_service.url, token=TOKEN)
    sub = _green(population)
    with caplog.at_level(logging.INFO):
        assert client.lookup(sub, deadline_s=0.3).outcome is Outcome.NO_ANSWER
        assert client.breaker is not None and not client.breaker.online
        status_service.faults.reset()
        deadline = time.monotonic() + 30.0
        while not client.breaker.online and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.breaker.online
        assert client.lookup(sub, deadline_s=2.0).outcome is Outcome.ANSWER
    ups = [r for r in caplog.records if r.getMessage() == "status service reachable again"]
    downs = [r for r in caplog.records if "deciding offline" in r.getMessage()]
    assert len(ups) == 1 and len(downs) == 1
    client.close()


def test_probe_backs_off_while_the_service_stays_down(status_service, population):
    status_service.faults.set(down=True)
    clock = FakeMonotonic()
    client = _client(status_service.url, clock=clock)
    client.lookup(_green(population), deadline_s=0.3)
    breaker = client.breaker
    assert breaker is not None
    waits = []
    for _ in range(5):
        waits.append(breaker.due_in())
        clock.t += breaker.due_in() or 0.0
        assert breaker.tick() is False
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    client.close()


def test_misconfiguration_is_logged_every_time_and_does_not_open_the_breaker(
    status_service, population, caplog
):
    client = HttpStatusClient(status_service.url, token="wrong", probe_background=False)
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            assert client.lookup(_green(population), deadline_s=1.0).outcome is Outcome.NO_ANSWER
    assert status_service.stats.requests == 2
    assert client.breaker is not None and client.breaker.online
    assert caplog.text.count("refused the kiosk: HTTP 401") == 2
    client.close()


def test_without_the_breaker_every_lookup_asks(status_service, population):
    status_service.faults.set(error_rate=1.0)
    client = HttpStatusClient(status_service.url, token=TOKEN, breaker=False)
    client.lookup(_green(population), deadline_s=0.1)
    asked = status_service.stats.requests
    client.lookup(_green(population), deadline_s=0.1)
    assert status_service.stats.requests > asked
    client.close()


def test_a_failed_key_fetch_at_start_puts_the_kiosk_offline_at_once(status_service, population):
    status_service.faults.set(down=True)
    client = _client(status_service.url)
    assert client.fetch_keys(deadline_s=1.0) is None
    asked = status_service.stats.requests
    assert client.lookup(_green(population), deadline_s=1.0).detail == "status service down"
    assert status_service.stats.requests == asked
    client.close()
