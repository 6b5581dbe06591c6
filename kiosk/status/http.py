"""Status lookups over HTTP (status-api.md), one total deadline per lookup, retries inside it."""

from __future__ import annotations

import json
import logging
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from kiosk.errors import KioskError
from kiosk.status.answer import UNKNOWN, LookupResult, parse_answer, parse_error
from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

# A retry is only worth starting when this much of the deadline is left.
_MIN_ATTEMPT_S = 0.02
_RETRY_PAUSE_S = 0.03


class HttpStatusClient:
    """Asks ``POST {base_url}/v1/status`` over a pool of kept-alive connections.

    Deadlines are real time (``time.monotonic``), whatever clock the decisions use.

    The subject travels only in the body. A 429's ``Retry-After`` is honoured across lookups:
    until it has passed, lookups end at once with no answer instead of hammering the server.
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
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        kw: dict[str, Any] = {"maxsize": pool_size, "block": False, "retries": False}
        if self._base.startswith("https:"):
            try:
                ctx = ssl.create_default_context(cafile=ca_file)
                if client_cert:
                    ctx.load_cert_chain(client_cert, client_key)
            except (OSError, ssl.SSLError) as exc:
                raise KioskError(f"status service TLS set-up failed: {exc}") from exc
            kw["ssl_context"] = ctx
        self._http = urllib3.PoolManager(**kw)
        self._retry_after_until = 0.0
        self._throttle = LogThrottle(60.0)

    def lookup(self, subject: str, *, deadline_s: float) -> LookupResult:
        """Ask once, retrying transient failures while the deadline allows."""
        body = json.dumps({"sub": subject}).encode()
        end = time.monotonic() + deadline_s
        detail = "deadline passed"
        while True:
            now = time.monotonic()
            if now < self._retry_after_until:
                return LookupResult.no_answer("waiting out Retry-After")
            remaining = end - now
            if remaining < _MIN_ATTEMPT_S:
                return LookupResult.no_answer(detail)
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
                detail = f"{type(exc).__name__}"
                self._warn("transport", "status service unreachable: %s", detail)
                self._pause(end)
                continue
            result = self._interpret(resp, subject, end)
            if result is not None:
                return result
            detail = f"HTTP {resp.status}"
            self._pause(end)

    def _interpret(
        self, resp: urllib3.BaseHTTPResponse, subject: str, end: float
    ) -> LookupResult | None:
        """A final result, or None to retry."""
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
            wait = _retry_after_s(resp.headers.get("Retry-After"))
            self._retry_after_until = time.monotonic() + wait
            self._warn("429", "status service asks to slow down for %.1f s", wait)
            if time.monotonic() + wait + _MIN_ATTEMPT_S < end:
                time.sleep(wait)
                self._retry_after_until = 0.0
                return None
            return LookupResult.no_answer("HTTP 429")
        if 500 <= status < 600:
            self._warn("5xx", "status service error HTTP %d", status)
            return None
        return LookupResult.no_answer(f"HTTP {status}")

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
            log.warning("cannot fetch pass keys: %s", type(exc).__name__)
            return None
        if resp.status != 200:
            log.warning("cannot fetch pass keys: HTTP %d", resp.status)
            return None
        try:
            doc = json.loads(resp.data)
        except ValueError:
            log.warning("pass keys from the status service are not JSON")
            return None
        return doc if isinstance(doc, dict) else None

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.clear()


def _retry_after_s(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); 1 s when absent or odd."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 1.0
