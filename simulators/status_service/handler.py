"""The HTTP side of the simulated status service: the server and its request handler.

The handler routes the API (``/v1/``, subject to faults and counted) and the ``/_sim/``
control endpoints (never faulted, never counted); the state it serves is the
:class:`~simulators.status_service.service.StatusService`'s.
"""

from __future__ import annotations

import hmac
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any

from simulators.answers import (
    GARBAGE_BODY,
    MAX_REQUEST_BYTES,
    fault_outcome,
    status_answer,
)
from simulators.answers import json_object as _json_object
from simulators.population import STATUSES

if TYPE_CHECKING:
    from simulators.status_service.service import StatusService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_REQUEST_BYTES
# Idle keep-alive connections are dropped after this, so handler threads do not pile up.
IDLE_TIMEOUT_S = 30.0
_KNOWN_PATHS = frozenset(
    {"/v1/status", "/v1/keys", "/_sim/faults", "/_sim/status", "/_sim/stats", "/_sim/reset"}
)
_BEARER = {"WWW-Authenticate": 'Bearer realm="ashyq-sim"'}


class _BadBody(Exception):
    """The request body cannot be read; the connection must then be closed."""


class Server(ThreadingHTTPServer):
    """The threading HTTP server of one :class:`StatusService`."""

    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], service: StatusService) -> None:
        self.service = service
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for
        # seconds on a machine without DNS; the simulator has no use for the name.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer are normal in fault tests; no traceback on stderr.
        log.debug("connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: kiosks reuse one connection
    server_version = "AshyqSimStatus/1"
    timeout = IDLE_TIMEOUT_S
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms), which would dwarf every latency a benchmark measures.
    disable_nagle_algorithm = True
    server: Server

    # -- connection bookkeeping, so stop() can cut idle keep-alive connections ----------

    def setup(self) -> None:
        super().setup()
        self.server.service._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.service._untrack(self.connection)

    # -- logging: method, path and status only -------------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info("%s %s %s", self.command or "-", self._shown_path(), code)

    def _shown_path(self) -> str:
        # A client that breaks the spec might put a subject in the URL; log only known paths.
        path = (getattr(self, "path", None) or "").split("?", 1)[0]
        return path if path in _KNOWN_PATHS else "(other path)"

    def log_message(self, format: str, *args: Any) -> None:
        # The base class logs request lines and error details verbatim, which could carry
        # personal data; everything worth logging goes through log_request instead.
        pass

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/_sim/"):
            self._control(path)
        else:
            self._api(path)

    def _api(self, path: str) -> None:
        service = self.server.service
        service.stats._count(request=True)
        try:
            body = self._read_body()
        except _BadBody:
            self._answer(400, {"error": "bad_request"}, counted=True)
            return
        faults = service.faults.snapshot()
        if faults["latency_ms"]:
            service._stopping.wait(faults["latency_ms"] / 1000)
        outcome = fault_outcome(faults, service._roll)
        if outcome == "down":
            # Unreachable: the kiosk sees the connection close with no answer at all.
            service.stats._count(dropped=True)
            self.close_connection = True
            log.info("%s %s dropped (down)", self.command, self._shown_path())
            return
        if outcome == "status_429":
            retry = {"Retry-After": str(faults["retry_after_s"])}
            self._answer(429, {"error": "unavailable"}, counted=True, headers=retry)
        elif outcome == "error":
            self._answer(503, {"error": "unavailable"}, counted=True)
        elif outcome == "garbage":
            self._send(200, GARBAGE_BODY, "application/json", counted=True)
        elif path == "/v1/status" and self.command == "POST":
            self._status(body)
        elif path == "/v1/keys" and self.command == "GET":
            self._answer(200, service.jwks, counted=True)
        elif path in ("/v1/status", "/v1/keys"):
            self._answer(405, {"error": "bad_request"}, counted=True)
        else:
            self._answer(404, {"error": "not_found"}, counted=True)

    def _status(self, body: bytes) -> None:
        service = self.server.service
        if service.token is not None and not self._authorized(service.token):
            self._answer(401, {"error": "unauthorized"}, counted=True, headers=_BEARER)
            return
        answer = status_answer(
            service.population, body, now=service.clock(), max_age_s=service.max_age_s
        )
        self._answer(answer.code, answer.body, counted=True)

    def _control(self, path: str) -> None:
        service = self.server.service
        try:
            body = self._read_body()
        except _BadBody:
            self._answer(400, {"error": "bad_request"})
            return
        route = (self.command, path)
        if route == ("GET", "/_sim/faults"):
            self._answer(200, service.faults.snapshot())
        elif route == ("POST", "/_sim/faults"):
            changes = _json_object(body)
            if changes is None:
                self._answer(400, {"error": "bad_request", "detail": "expected a JSON object"})
                return
            try:
                service.faults.set(**changes)
            except ValueError as exc:
                self._answer(400, {"error": "bad_request", "detail": str(exc)})
                return
            self._answer(200, service.faults.snapshot())
        elif route == ("POST", "/_sim/status"):
            self._set_status(_json_object(body))
        elif route == ("GET", "/_sim/stats"):
            self._answer(200, service.stats.snapshot())
        elif route == ("POST", "/_sim/reset"):
            service.faults.reset()
            service.stats.reset()
            self._answer(200, service.faults.snapshot())
        else:
            self._answer(404, {"error": "not_found"})

    def _set_status(self, request: dict[str, Any] | None) -> None:
        sub = request.get("sub") if request is not None else None
        st = request.get("st") if request is not None else None
        if not isinstance(sub, str) or st not in STATUSES:
            detail = f"expected {{'sub': ..., 'st': one of {', '.join(STATUSES)}}}"
            self._answer(400, {"error": "bad_request", "detail": detail})
            return
        try:
            person = self.server.service.population.set_status(sub, st)
        except KeyError:
            self._answer(404, {"error": "unknown_subject"})
            return
        # The index identifies the person to the test without echoing the subject.
        self._answer(200, {"index": person.index, "st": person.st})

    # -- request and answer plumbing ------------------------------------------------------

    def _authorized(self, token: str) -> bool:
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), token.encode())

    def _read_body(self) -> bytes:
        """The request body; a body we cannot delimit is refused and the connection closed."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise _BadBody
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            raise _BadBody
        return self.rfile.read(length)

    def _answer(
        self,
        code: int,
        obj: Any,
        *,
        counted: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self._send(code, body, "application/json", counted=counted, headers=headers)

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str,
        *,
        counted: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        if counted:
            self.server.service.stats._count(status=code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
