"""Checks of what the kiosk reaches over the network: the status service and MQTT brokers."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import urllib3
from paho.mqtt.enums import CallbackAPIVersion
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from kiosk.config import Config
from kiosk.doctor.report import Check, masked_url, ms_text
from kiosk.errors import KioskError
from kiosk.fleet.broker import BrokerUrlError, build_ssl_context, parse_broker_url
from kiosk.jwks import KeySet
from kiosk.secret import reveal
from kiosk.status.answer import Outcome, parse_answer, parse_error
from kiosk.tls import client_context

REQUEST_TIMEOUT_S = 3.0
"""How long one request of the doctor may take (the kiosk's own deadline is shorter)."""
BROKER_TIMEOUT_S = 3.0
"""How long the TCP connect plus MQTT CONNECT/CONNACK to one broker may take."""

# A probe, not a person: a well-formed IIN (valid date fields, century digit 0, check digit
# right) with serial 0000 and birth date 2000-01-01, which the authority should not know
# (the simulators' population does not hold it). The expected answer is 404 unknown_subject.
PROBE_SUBJECT = "iin:000101000003"

_TLS_FIX = (
    "certificate not trusted: set {section} ca_file to the CA bundle that signed the "
    "server's certificate; check the clock too (certificates are only valid between dates)"
)


def _reason(exc: BaseException) -> str:
    """A short reason from a library error: the innermost OS error's text if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, SSLError | ssl.SSLError) and exc.args:
        return str(exc.args[-1])
    return type(exc).__name__


# -- status service ------------------------------------------------------------------------


def _pool(cfg: Config) -> urllib3.PoolManager:
    """One-connection pool set up as the kiosk's own client does (CA file, client cert)."""
    st = cfg.status
    kw: dict[str, Any] = {"maxsize": 1, "retries": False}
    assert st.url is not None  # the loader requires [status] url for backend "http"
    if st.url.startswith("https:"):
        kw["ssl_context"] = client_context(
            ca_file=st.ca_file, client_cert=st.client_cert, client_key=st.client_key
        )
    return urllib3.PoolManager(**kw)


def _transport_failure(name: str, shown: str, exc: HTTPError) -> Check:
    host = urlsplit(shown).netloc
    if isinstance(exc, SSLError):
        return Check.failed(
            name, f"{shown}: TLS failed: {_reason(exc)}", _TLS_FIX.format(section="[status]")
        )
    if isinstance(exc, NameResolutionError):
        return Check.failed(
            name, f"{shown}: cannot resolve the host name", "check DNS and the host in [status] url"
        )
    if isinstance(exc, NewConnectionError):
        return Check.failed(
            name,
            f"cannot connect to {host}: {_reason(exc)}",
            "check the network cable/Wi-Fi and [status] url (ping the host; is the service up?)",
        )
    if isinstance(exc, ConnectTimeoutError):
        return Check.failed(
            name,
            f"no connection to {host} within {REQUEST_TIMEOUT_S:.0f} s",
            "check the network and firewall (outbound to the service's port) and [status] url",
        )
    if isinstance(exc, ReadTimeoutError):
        return Check.failed(
            name,
            f"{shown}: connected, but no answer within {REQUEST_TIMEOUT_S:.0f} s",
            "the service is overloaded or a proxy holds the request; ask the authority",
        )
    if isinstance(exc, ProtocolError):
        return Check.failed(
            name,
            f"{shown}: the connection closed without an answer",
            "the service or a proxy in between drops requests: check [status] url and "
            "ask the authority whether the service is up",
        )
    return Check.failed(
        name, f"{shown}: {type(exc).__name__}: {_reason(exc)}", "check [status] url"
    )


def _refused(name: str, shown: str, status: int, body: bytes) -> Check:
    """A final HTTP status that is neither an answer nor unknown_subject."""
    code = parse_error(body) or ""
    said = f"HTTP {status}" + (f" {code}" if code else "")
    if status in (401, 403):
        return Check.failed(
            name,
            f"{shown}: token rejected ({said})",
            "check [status] token (or token_file): it must be this kiosk's bearer token",
        )
    if status in (400, 404, 405):
        return Check.failed(
            name,
            f"{shown}: not the status API ({said})",
            "check [status] url: the base URL, without /v1/status",
        )
    if status == 429:
        return Check.warned(
            name, f"{shown}: asks the kiosk to slow down ({said})", "ask the authority about limits"
        )
    return Check.failed(
        name, f"{shown}: service error ({said})", "the service has a problem: ask the authority"
    )


def check_status_service(cfg: Config) -> Check:
    """GET /v1/keys and one POST /v1/status for a probe subject; reports the latency."""
    name = "status service"
    st = cfg.status
    if st.backend == "none":
        return Check.skipped(
            name, "backend none: passes decide on their own, bare IINs get no answer"
        )
    if st.backend == "mqtt":
        if not cfg.mqtt.enabled:
            return Check.failed(
                name,
                "backend mqtt, but [mqtt] enabled = false: no lookup can be answered",
                'set [mqtt] enabled = true, or [status] backend = "http"',
            )
        return Check.skipped(name, "status over MQTT: see the mqtt broker check")
    assert st.url is not None  # the loader requires [status] url for backend "http"
    base = st.url.rstrip("/")
    shown = masked_url(base)
    try:
        http = _pool(cfg)
    except (OSError, ssl.SSLError) as exc:
        return Check.failed(
            name,
            f"TLS set-up failed: {_reason(exc)}",
            "check that [status] ca_file, client_cert and client_key exist and belong together",
        )
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if cfg.token:
        headers["Authorization"] = f"Bearer {cfg.token.reveal()}"
    timeout = urllib3.Timeout(total=REQUEST_TIMEOUT_S)
    notes: list[str] = []
    try:
        t0 = time.perf_counter()
        resp = http.request("GET", base + "/v1/keys", headers=headers, timeout=timeout)
        keys_ms = (time.perf_counter() - t0) * 1000
        notes.append(_keys_note(resp.status, resp.data, keys_ms))
        # The probe goes over the connection the GET left open, as the kiosk's lookups do,
        # so its latency is what a lookup costs, without the connection set-up.
        body = json.dumps({"sub": PROBE_SUBJECT}).encode()
        t0 = time.perf_counter()
        resp = http.request(
            "POST", base + "/v1/status", body=body, headers=headers, timeout=timeout
        )
        ms = (time.perf_counter() - t0) * 1000
    except HTTPError as exc:
        return _transport_failure(name, shown, exc)
    finally:
        http.clear()
    if resp.status == 404 and parse_error(resp.data) == "unknown_subject":
        answered = "probe answered unknown_subject"
    elif resp.status == 200 and parse_answer(resp.data, PROBE_SUBJECT).outcome is Outcome.ANSWER:
        answered = "probe answered with a status"
    elif resp.status == 200:
        why = parse_answer(resp.data, PROBE_SUBJECT).detail
        return Check.failed(
            name,
            f"{shown}: HTTP 200 but not a valid answer ({why})",
            "check [status] url points at the status API, not a proxy or login page",
            notes=notes,
        )
    else:
        return _refused(name, shown, resp.status, resp.data)
    detail = f"{shown}: {answered} in {ms_text(ms)}" + (", token accepted" if cfg.token else "")
    if ms > st.deadline_ms:
        return Check.warned(
            name,
            detail + f", over [status] deadline_ms = {st.deadline_ms}",
            "lookups will time out and the offline rule decide: check the network",
            notes=notes,
        )
    return Check.passed(name, detail, notes=notes)


def _keys_note(status: int, body: bytes, ms: float) -> str:
    if status != 200:
        return f"GET /v1/keys: HTTP {status} (passes verify with the saved keys)"
    try:
        keys = KeySet.from_document(json.loads(body), source="GET /v1/keys")
    except (ValueError, KioskError):
        return "GET /v1/keys: not a JWK Set"
    n = len(keys)
    kids = ", ".join(keys.kids())
    return f"GET /v1/keys: {n} usable key{'s' if n != 1 else ''} ({kids}) in {ms_text(ms)}"


# -- MQTT brokers --------------------------------------------------------------------------


def _password(cfg: Config) -> str | None:
    m = cfg.mqtt
    if m.password_file:
        try:
            return Path(m.password_file).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None  # the probe then fails with the broker's own refusal
    return reveal(m.password)


def _probe_broker(cfg: Config, url: str) -> tuple[bool, str, str]:
    """(reachable, detail, fix) for one broker URL: TCP connect, MQTT 5 CONNECT, CONNACK."""
    m = cfg.mqtt
    shown = masked_url(url)
    try:
        # The link's own parser: the doctor passes exactly the URLs the kiosk can use.
        broker = parse_broker_url(url)
        ctx = (
            build_ssl_context(ca_file=m.ca_file, client_cert=m.client_cert, client_key=m.client_key)
            if broker.tls
            else None
        )
    except BrokerUrlError as exc:
        return False, f"{shown}: {exc.problem}", "check [mqtt] brokers"
    except KioskError as exc:
        return (
            False,
            f"{shown}: {exc}",
            "check that [mqtt] ca_file, client_cert and client_key exist and belong together",
        )
    host, port = broker.host, broker.port
    # Its own client id: connecting with the kiosk's would take over (and cut) the session
    # of a kiosk daemon running at the same time.
    client_id = f"{m.client_id or cfg.kiosk.id}-doctor"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect_timeout = BROKER_TIMEOUT_S
    if m.username:
        client.username_pw_set(m.username, _password(cfg))
    answers: list[Any] = []
    client.on_connect = lambda _c, _u, _flags, reason, _props: answers.append(reason)
    t0 = time.perf_counter()
    try:
        if ctx is not None:
            client.tls_set_context(ctx)
        client.connect(host, port, keepalive=m.keepalive_s)
        deadline = time.monotonic() + BROKER_TIMEOUT_S
        while not answers and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
    except ssl.SSLError as exc:
        return False, f"{shown}: TLS failed: {_reason(exc)}", _TLS_FIX.format(section="[mqtt]")
    except OSError as exc:
        return (
            False,
            f"cannot connect to {host}:{port}: {_reason(exc)}",
            "check the network and [mqtt] brokers (is the broker up? firewall?)",
        )
    finally:
        client.disconnect()
    ms = (time.perf_counter() - t0) * 1000
    if not answers:
        return (
            False,
            f"{shown}: TCP connected, but no CONNACK within {BROKER_TIMEOUT_S:.0f} s",
            "is it an MQTT broker? mqtts:// for a TLS port; check [mqtt] brokers",
        )
    reason = answers[0]
    if reason.is_failure:
        fix = "the broker refused this kiosk: check its account and access lists"
        if reason.value in (134, 135):  # bad user name or password, not authorised
            fix = "check [mqtt] username and password (or password_file)"
        return False, f"{shown}: broker refused: {reason}", fix
    who = f" as {m.username}" if m.username else ""
    return True, f"{shown}: MQTT 5 connected{who} in {ms_text(ms)}", ""


def check_brokers(cfg: Config) -> list[Check]:
    """Each configured broker: reachable, and accepts this kiosk's credentials."""
    m = cfg.mqtt
    if not m.enabled:
        return [Check.skipped("mqtt broker", "[mqtt] enabled = false")]
    urls = list(m.brokers or [])
    if not urls:
        return [Check.failed("mqtt broker", "no broker configured", "set [mqtt] brokers")]
    probes = [_probe_broker(cfg, url) for url in urls]
    any_up = any(up for up, _, _ in probes)
    checks: list[Check] = []
    for i, (up, detail, fix) in enumerate(probes):
        name = "mqtt broker" if len(urls) == 1 else f"mqtt broker {i + 1}"
        if up:
            checks.append(Check.passed(name, detail))
        elif any_up:
            # The kiosk fails over to a broker that works; a spare being down is a warning.
            checks.append(Check.warned(name, detail + " (the kiosk fails over)", fix))
        else:
            checks.append(Check.failed(name, detail, fix))
    return checks
