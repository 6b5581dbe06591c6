"""The HTTP status client against the real simulated service, fault by fault."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from kiosk.status.answer import Outcome
from kiosk.status.http import HttpStatusClient, _retry_after_s
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
    assert _retry_after_s("3") == 3.0
    assert _retry_after_s(None) == 1.0
    assert _retry_after_s("soon") == 1.0
    assert _retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
