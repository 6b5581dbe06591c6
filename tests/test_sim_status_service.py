"""The simulated status authority over real HTTP: answers, errors, keep-alive and faults."""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from simulators.issuer import SIM_PASS_JWKS
from simulators.population import Population, generate, save
from simulators.status_service import Faults, StatusService, rfc3339

TOKEN = "kiosk-test-token"
FIXED_NOW = 1_621_589_400.0  # 2021-05-21T09:30:00Z, the spec's example
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def population() -> Population:
    return Population(generate(40, seed=11))


@pytest.fixture
def service(population: Population) -> Iterator[StatusService]:
    with StatusService(population, token=TOKEN, clock=lambda: FIXED_NOW) as svc:
        yield svc


def connect(service: StatusService, timeout: float = 5.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)


def call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = TOKEN,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=all_headers)
    response = conn.getresponse()
    return response.status, response, response.read()


def lookup(service: StatusService, sub: str, **kw: Any) -> tuple[int, Any]:
    conn = connect(service)
    try:
        status, _, body = call(conn, "POST", "/v1/status", {"sub": sub}, **kw)
    finally:
        conn.close()
    return status, json.loads(body)


# --- answers and errors -------------------------------------------------------------------


def test_known_subject_gets_the_answer(service: StatusService, population: Population) -> None:
    person = population.by_index(3)
    status, answer = lookup(service, person.sub)
    assert status == 200
    assert answer == {
        "sub": person.sub,
        "st": person.st,
        "as_of": "2021-05-21T09:30:00Z",
        "max_age": 300,
    }
    assert service.url == f"http://127.0.0.1:{service.port}"


def test_max_age_is_configurable(population: Population) -> None:
    with StatusService(population, max_age_s=0) as svc:
        assert lookup(svc, population.by_index(0).sub)[1]["max_age"] == 0


def test_unknown_subject_is_404(service: StatusService) -> None:
    assert lookup(service, "passport:ZZZ:1") == (404, {"error": "unknown_subject"})


@pytest.mark.parametrize("token", [None, "wrong-token", ""], ids=["missing", "wrong", "empty"])
def test_token_is_required_when_configured(
    service: StatusService, population: Population, token: str | None
) -> None:
    conn = connect(service)
    status, response, body = call(
        conn, "POST", "/v1/status", {"sub": population.by_index(0).sub}, token=token
    )
    assert (status, json.loads(body)) == (401, {"error": "unauthorized"})
    assert response.getheader("WWW-Authenticate", "").startswith("Bearer")


def test_wrong_auth_scheme_is_401(service: StatusService, population: Population) -> None:
    conn = connect(service)
    status, _, _ = call(
        conn,
        "POST",
        "/v1/status",
        {"sub": population.by_index(0).sub},
        token=None,
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    assert status == 401


def test_no_token_configured_accepts_anyone(population: Population) -> None:
    with StatusService(population) as svc:
        assert lookup(svc, population.by_index(0).sub, token=None)[0] == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'"iin:921029350851"',
        b"{}",
        b'{"sub": 921029350851}',
        b'{"sub": "921029350851"}',
        b'{"sub": "iin:921029350852"}',
        b'{"subject": "iin:921029350851"}',
        b'{"sub": "iin:\xff"}',
        b"",
    ],
)
def test_malformed_body_is_bad_request(service: StatusService, raw: bytes) -> None:
    conn = connect(service)
    status, response, body = call(conn, "POST", "/v1/status", raw=raw)
    assert (status, json.loads(body)) == (400, {"error": "bad_request"})
    # The connection is still usable: the body was read in full.
    assert call(conn, "POST", "/v1/status", {"sub": "passport:ZZZ:1"})[0] == 404


def test_oversized_body_is_bad_request_and_closes(service: StatusService) -> None:
    conn = connect(service)
    status, response, _ = call(conn, "POST", "/v1/status", raw=b"{" + b" " * 10_000 + b"}")
    assert status == 400
    assert response.getheader("Connection") == "close"


def test_other_paths_and_methods(service: StatusService) -> None:
    conn = connect(service)
    assert call(conn, "GET", "/v1/status")[0] == 405
    assert call(conn, "POST", "/v1/keys", {})[0] == 405
    assert call(conn, "GET", "/v2/status")[0] == 404
    assert call(conn, "GET", "/_sim/nothing")[0] == 404


def test_keys_serve_the_pass_jwks(service: StatusService) -> None:
    conn = connect(service)
    status, response, body = call(conn, "GET", "/v1/keys", token=None)
    assert status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body) == json.loads(SIM_PASS_JWKS.read_text())


def test_keys_can_be_replaced_while_running(service: StatusService) -> None:
    service.jwks = {"keys": []}
    conn = connect(service)
    assert json.loads(call(conn, "GET", "/v1/keys")[2]) == {"keys": []}


def test_as_of_is_rfc3339_utc() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(FIXED_NOW + 0.9) == "2021-05-21T09:30:00Z"


# --- connections --------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(service: StatusService, population: Population) -> None:
    conn = connect(service)
    for person in population.people[:5]:
        status, response, body = call(conn, "POST", "/v1/status", {"sub": person.sub})
        assert status == 200
        assert json.loads(body)["st"] == person.st
        assert response.getheader("Content-Length") == str(len(body))
        assert response.getheader("Connection") is None
    assert service.stats.connections == 1


def test_urllib3_pool_reuses_its_connection(service: StatusService, population: Population) -> None:
    with urllib3.PoolManager(maxsize=1) as http:
        for person in population.people[:10]:
            response = http.request(
                "POST",
                f"{service.url}/v1/status",
                json={"sub": person.sub},
                headers={"Authorization": f"Bearer {TOKEN}"},
                retries=False,
            )
            assert response.status == 200
    assert service.stats.connections == 1
    assert service.stats.by_status == {200: 10}


def test_stop_cuts_idle_keep_alive_connections_and_restarts_on_the_same_port(
    population: Population,
) -> None:
    svc = StatusService(population).start()
    port = svc.port
    conn = connect(svc)
    assert call(conn, "GET", "/v1/keys")[0] == 200
    svc.stop()
    assert not svc.running
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(conn, "GET", "/v1/keys")
    with svc.start():
        assert svc.port == port
        assert call(connect(svc), "GET", "/v1/keys")[0] == 200


def test_stop_does_not_wait_for_injected_latency(population: Population) -> None:
    svc = StatusService(population).start()
    svc.faults.set(latency_ms=60_000)
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            call(connect(svc, timeout=30), "GET", "/v1/keys")
        except BaseException as exc:  # noqa: BLE001 - any outcome but hanging is fine
            errors.append(exc)

    client = threading.Thread(target=slow_call)
    client.start()
    while svc.stats.requests == 0:
        time.sleep(0.005)
    svc.stop()
    client.join(timeout=10)
    assert not client.is_alive()


# --- faults -------------------------------------------------------------------------------


def test_latency_delays_the_answer(service: StatusService, population: Population) -> None:
    service.faults.set(latency_ms=150)
    started = time.monotonic()
    assert lookup(service, population.by_index(0).sub)[0] == 200
    assert time.monotonic() - started >= 0.15


def test_down_closes_without_answering(service: StatusService, population: Population) -> None:
    sub = population.by_index(0).sub
    conn = connect(service)
    assert call(conn, "POST", "/v1/status", {"sub": sub})[0] == 200
    service.faults.set(down=True)
    # Both an open keep-alive connection and a new one get no answer at all.
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(conn, "POST", "/v1/status", {"sub": sub})
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(connect(service), "GET", "/v1/keys")
    assert service.stats.dropped == 2
    service.faults.set(down=False)
    assert lookup(service, sub)[0] == 200
    assert service.stats.requests == 4
    assert service.stats.by_status == {200: 2}


def test_429_carries_retry_after(service: StatusService, population: Population) -> None:
    service.faults.set(status_429=True, retry_after_s=7)
    conn = connect(service)
    status, response, body = call(conn, "POST", "/v1/status", {"sub": population.by_index(0).sub})
    assert (status, json.loads(body)) == (429, {"error": "unavailable"})
    assert response.getheader("Retry-After") == "7"


def test_error_rate_one_always_fails(service: StatusService, population: Population) -> None:
    service.faults.set(error_rate=1.0)
    for _ in range(3):
        assert lookup(service, population.by_index(0).sub) == (503, {"error": "unavailable"})


def test_error_rate_is_seeded_and_deterministic(population: Population) -> None:
    rng = random.Random(99)
    expected = [503 if rng.random() < 0.3 else 200 for _ in range(40)]
    with StatusService(population, seed=99) as svc:
        svc.faults.set(error_rate=0.3)
        conn = connect(svc)
        sub = population.by_index(0).sub
        got = [call(conn, "POST", "/v1/status", {"sub": sub})[0] for _ in range(40)]
    assert got == expected
    assert 200 in got and 503 in got


def test_garbage_is_a_200_that_is_not_json(service: StatusService, population: Population) -> None:
    service.faults.set(garbage=True)
    conn = connect(service)
    status, _, body = call(conn, "POST", "/v1/status", {"sub": population.by_index(0).sub})
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)


def test_faults_validate_their_values() -> None:
    faults = Faults()
    for bad in (
        {"latency_ms": -1},
        {"error_rate": 1.5},
        {"down": "yes"},
        {"retry_after_s": 1.5},
        {"latency_ms": True},
        {"explode": True},
    ):
        with pytest.raises(ValueError):
            faults.set(**bad)
    # A rejected change leaves everything as it was, even its valid parts.
    with pytest.raises(ValueError):
        faults.set(down=True, error_rate=2)
    assert faults == Faults()
    with pytest.raises(ValueError):
        Faults(error_rate=-0.1)


def test_faults_changed_from_another_thread_apply_to_the_next_request(
    service: StatusService, population: Population
) -> None:
    sub = population.by_index(0).sub
    conn = connect(service)
    assert call(conn, "POST", "/v1/status", {"sub": sub})[0] == 200
    switcher = threading.Thread(target=service.faults.set, kwargs={"status_429": True})
    switcher.start()
    switcher.join()
    assert call(conn, "POST", "/v1/status", {"sub": sub})[0] == 429
    service.faults.reset()
    assert call(conn, "POST", "/v1/status", {"sub": sub})[0] == 200


def test_faults_over_http(service: StatusService, population: Population) -> None:
    control = connect(service)
    status, _, body = call(control, "GET", "/_sim/faults", token=None)
    assert (status, json.loads(body)) == (200, Faults().snapshot())

    status, _, body = call(control, "POST", "/_sim/faults", {"error_rate": 1.0}, token=None)
    assert status == 200
    assert json.loads(body)["error_rate"] == 1.0
    assert service.faults.error_rate == 1.0
    assert lookup(service, population.by_index(0).sub)[0] == 503

    # Control endpoints ignore faults, so a "down" service can be brought back.
    call(control, "POST", "/_sim/faults", {"down": True, "error_rate": 0}, token=None)
    status, _, body = call(control, "POST", "/_sim/faults", {"down": False}, token=None)
    assert status == 200
    assert lookup(service, population.by_index(0).sub)[0] == 200


@pytest.mark.parametrize("raw", [b'{"down": "yes"}', b'{"nonsense": 1}', b"[]", b"nope"], ids=str)
def test_bad_faults_over_http_are_refused(service: StatusService, raw: bytes) -> None:
    status, _, body = call(connect(service), "POST", "/_sim/faults", raw=raw)
    assert status == 400
    assert json.loads(body)["error"] == "bad_request"
    assert service.faults.snapshot() == Faults().snapshot()


def test_status_changes_live_over_http(service: StatusService, population: Population) -> None:
    person = population.with_status("green")[0]
    control = connect(service)
    status, _, body = call(control, "POST", "/_sim/status", {"sub": person.sub, "st": "red"})
    assert (status, json.loads(body)) == (200, {"index": person.index, "st": "red"})
    assert lookup(service, person.sub)[1]["st"] == "red"
    assert call(control, "POST", "/_sim/status", {"sub": "passport:ZZZ:1", "st": "red"})[0] == 404
    assert call(control, "POST", "/_sim/status", {"sub": person.sub, "st": "pink"})[0] == 400


def test_stats_and_reset_over_http(service: StatusService, population: Population) -> None:
    lookup(service, population.by_index(0).sub)
    lookup(service, "passport:ZZZ:1")
    service.faults.set(latency_ms=1)
    control = connect(service)
    stats = json.loads(call(control, "GET", "/_sim/stats")[2])
    assert stats["requests"] == 2
    assert stats["by_status"] == {"200": 1, "404": 1}
    assert call(control, "POST", "/_sim/reset")[0] == 200
    assert service.stats.requests == 0
    assert service.faults.latency_ms == 0


# --- privacy ------------------------------------------------------------------------------


def test_logs_never_name_the_subject(
    service: StatusService, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    sub = population.by_index(0).sub
    number = sub.rsplit(":", 1)[1]
    caplog.set_level(logging.DEBUG, logger="simulators.status_service")
    conn = connect(service)
    call(conn, "POST", "/v1/status", {"sub": sub})
    call(conn, "POST", "/v1/status", raw=json.dumps({"sub": sub + "x"}).encode())
    call(conn, "GET", f"/v1/status?sub={sub}")  # a client breaking the spec
    call(conn, "POST", "/_sim/status", {"sub": sub, "st": "red"})
    service.faults.set(down=True)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(conn, "POST", "/v1/status", {"sub": sub})
    service.stop()  # join the handlers so every log record is in
    assert "POST /v1/status 200" in caplog.text
    assert number not in caplog.text


# --- standalone -------------------------------------------------------------------------


def test_runs_standalone_until_sigterm(tmp_path: Path) -> None:
    people = generate(10, seed=4)
    path = tmp_path / "people.jsonl"
    save(people, path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["--port", "0", "--population", str(path), "--token", TOKEN]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.status_service", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
        status, _, body = call(conn, "POST", "/v1/status", {"sub": people[0].sub})
        assert (status, json.loads(body)["st"]) == (200, people[0].st)
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert people[0].sub.rsplit(":", 1)[1] not in proc.stderr.read()  # type: ignore[union-attr]


def test_standalone_reports_a_bad_population_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "simulators.status_service", "--population", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{bad}:1:" in result.stderr
