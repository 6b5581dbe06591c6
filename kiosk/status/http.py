"""Status lookups over HTTP (status-api.md), one total deadline per lookup, retries inside it."""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError

from kiosk.errors import KioskError
from kiosk.status.answer import UNKNOWN, LookupResult, parse_answer, parse_error
from kiosk.status.breaker import Breaker
from kiosk.throttle import LogThrottle
from kiosk.tls import client_context

log = logging.getLogger(__name__)

# A retry is only worth starting when this much of the deadline is left.
_MIN_ATTEMPT_S = 0.02
_RETRY_PAUSE_S = 0.03
# A server's Retry-After is honoured up to this: a misconfigured or hostile
# `Retry-After: 99999999` must not keep the kiosk offline until it is restarted.
RETRY_AFTER_MAX_S = 60.0
_RETRY_AFTER_DEFAULT_S = 1.0  # absent or unreadable
_DEFAULT_DEADLINE_S = 0.8  # the probe's timeout until a lookup has said what the deadline is


class HttpStatusClient:
    """Asks ``POST {base_url}/v1/status`` over a pool of kept-alive connections.

    Deadlines are real time (``time.monotonic``), whatever clock the decisions use.

    The subject travels only in the body. When a lookup fails for want of the service
    (refused, timeout, TLS, 5xx, 429) the :class:`Breaker` opens: later lookups end at once
    with no answer while a background probe (``GET /v1/keys``, which carries no subject)
    waits for the service to answer again. A 429's ``Retry-After`` (at most
    ``RETRY_AFTER_MAX_S``) holds the probe back as well. ``breaker`` False turns this off
    (the benchmark's "before").
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        pool_size: int = 4,
        breaker: bool = True,
        probe_background: bool = True,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        kw: dict[str, Any] = {"maxsize": pool_size, "block": False, "retries": False}
        if self._base.startswith("https:"):
            try:
                ctx = client_context(
                    ca_file=ca_file, client_cert=client_cert, client_key=client_key
                )
            except (OSError, ssl.SSLError) as exc:
                raise KioskError(f"status service TLS set-up failed: {exc}") from exc
            kw["ssl_context"] = ctx
        self._http = urllib3.PoolManager(**kw)
        self._now = now
        self._retry_after_until = 0.0  # only without the breaker, which holds it otherwise
        self._deadline_s = _DEFAULT_DEADLINE_S
        self._throttle = LogThrottle(60.0)
        self.breaker: Breaker | None = (
            Breaker(probe=self._probe, now=now, background=probe_background) if breaker else None
        )

    def lookup(self, subject: str, *, deadline_s: float) -> LookupResult:
        """Ask once, retrying transient failures while the deadline allows."""
        self._deadline_s = deadline_s
        if self.breaker is not None and not self.breaker.allow():
            return LookupResult.no_answer("status service down")
        if time.monotonic() < self._retry_after_until:
            return LookupResult.no_answer("waiting out Retry-After")
        body = json.dumps({"sub": subject}).encode()
        end = time.monotonic() + deadline_s
        cause = "timeout"
        while True:
            remaining = end - time.monotonic()
            if remaining < _MIN_ATTEMPT_S:
                return self._down(cause)
            try:
                resp = self._http.request(
                    "POST",
                    self._base + "/v1/status",
                    body=body,
                    headers=self._headers,
                    timeout=urllib3.Timeout(total=remaining),
                    preload_content=True,
                )
            except HTTPError as exc:
                cause = _transport_cause(exc)
                self._pause(end)
                continue
            result = self._interpret(resp, subject, end)
            if isinstance(result, LookupResult):
                if self.breaker is not None:
                    self.breaker.succeeded()  # it answered, whatever it said
                return result
            cause, retry_after = result
            if retry_after is not None:
                if time.monotonic() + retry_after + _MIN_ATTEMPT_S >= end:
                    return self._down(cause, retry_after)
                time.sleep(retry_after)
                continue
            self._pause(end)

    def _down(self, cause: str, retry_after_s: float = 0.0) -> LookupResult:
        """No answer for want of the service: the breaker opens (or the old per-lookup wait)."""
        if self.breaker is not None:
            self.breaker.failed(cause, not_before_s=retry_after_s)
        else:
            self._warn("down", "status service unreachable: %s", cause)
            self._retry_after_until = time.monotonic() + retry_after_s
        return LookupResult.no_answer(cause)

    def _interpret(
        self, resp: urllib3.BaseHTTPResponse, subject: str, end: float
    ) -> LookupResult | tuple[str, float | None]:
        """A final result, or (why, Retry-After seconds or None) to retry within the deadline."""
        status = resp.status
        if status == 200:
            result = parse_answer(resp.data, subject)
            if result.detail:
                self._warn("malformed", "status service sent a malformed answer: %s", result.detail)
            return result
        if status == 404 and parse_error(resp.data) == "unknown_subject":
            return UNKNOWN
        if status in (400, 401, 403, 404):
            # The kiosk is misconfigured (token, URL): retrying will not help, say it loudly.
            error = parse_error(resp.data)
            # Only codes the API defines are logged: a server's own text might quote a subject.
            known = error if error in ("bad_request", "unauthorized", "unknown_subject") else ""
            log.error(
                "status service refused the kiosk: HTTP %d %s; check [status] url and token",
                status,
                known,
            )
            return LookupResult.no_answer(f"HTTP {status}")
        if status == 429:
            wait = retry_after_s(resp.headers.get("Retry-After"))
            return f"HTTP 429, Retry-After {wait:.0f} s", wait
        if 500 <= status < 600:
            return f"HTTP {status}", None
        return LookupResult.no_answer(f"HTTP {status}")

    def _probe(self) -> bool:
        """Whether the service answers: ``GET /v1/keys``, which names no subject.

        Any HTTP answer but a 429 or a 5xx counts (even a 401: the service is there, and
        the lookup will say loudly what is wrong). The timeout is the lookup deadline, so
        "back" means back fast enough for the people at the gate.
        """
        try:
            resp = self._http.request(
                "GET",
                self._base + "/v1/keys",
                headers=self._headers,
                timeout=urllib3.Timeout(total=self._deadline_s),
            )
        except HTTPError:
            return False
        if resp.status == 429 and self.breaker is not None:
            wait = retry_after_s(resp.headers.get("Retry-After"))
            self.breaker.failed("HTTP 429", not_before_s=wait)
        return resp.status != 429 and not 500 <= resp.status < 600

    def _pause(self, end: float) -> None:
        remaining = end - time.monotonic()
        if remaining > _RETRY_PAUSE_S + _MIN_ATTEMPT_S:
            time.sleep(_RETRY_PAUSE_S)

    def _warn(self, key: str, msg: str, *args: object) -> None:
        ok, held = self._throttle.allow(key)
        if ok:
            log.warning(
                msg + (" (and %d more like it)" if held else ""), *args, *((held,) if held else ())
            )

    def fetch_keys(self, *, deadline_s: float = 2.0) -> dict[str, Any] | None:
        """``GET /v1/keys``: the pass JWK Set as parsed JSON, or None when it cannot be had."""
        try:
            resp = self._http.request(
                "GET",
                self._base + "/v1/keys",
                headers=self._headers,
                timeout=urllib3.Timeout(total=deadline_s),
            )
        except HTTPError as exc:
            cause = _transport_cause(exc)
            log.warning("cannot fetch pass keys: %s", cause)
            if self.breaker is not None:
                self.breaker.failed(cause)  # known down: the first person need not wait
            return None
        if resp.status != 200:
            log.warning("cannot fetch pass keys: HTTP %d", resp.status)
            if self.breaker is not None and (resp.status == 429 or resp.status >= 500):
                wait = retry_after_s(resp.headers.get("Retry-After")) if resp.status == 429 else 0
                self.breaker.failed(f"HTTP {resp.status}", not_before_s=wait)
            return None
        try:
            doc = json.loads(resp.data)
        except ValueError:
            log.warning("pass keys from the status service are not JSON")
            return None
        return doc if isinstance(doc, dict) else None

    def close(self) -> None:
        """Stop the probe, close the pooled connections."""
        if self.breaker is not None:
            self.breaker.close()
        self._http.clear()


def retry_after_s(value: str | None, *, now: float | None = None) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), at most
    ``RETRY_AFTER_MAX_S``; 1 s when absent or unreadable."""
    if not value:
        return _RETRY_AFTER_DEFAULT_S
    value = value.strip()
    # RFC 9110: delta-seconds is ASCII digits only ("1.5", "-3", "inf" and "²" are not).
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return _RETRY_AFTER_DEFAULT_S
    if when.tzinfo is None:
        return _RETRY_AFTER_DEFAULT_S  # "-0000": a date of unknown zone is garbage here
    wait = when.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, wait), RETRY_AFTER_MAX_S)


def _transport_cause(exc: HTTPError) -> str:
    """A plain name for a transport failure (never a subject: the URL carries none)."""
    inner = exc.__context__ or exc.__cause__
    if isinstance(exc, NewConnectionError):
        if isinstance(inner, ConnectionRefusedError) or "refused" in str(exc).lower():
            return "connection refused"
        return "cannot connect"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS failure"
    if isinstance(exc, ProtocolError):
        return "connection closed without an answer"
    return type(exc).__name__
