"""The simulated status authority: a real HTTP server speaking status-api.md.

Kiosks and tests talk to it over a real socket, so the kiosk's own HTTP client always runs
(no mock inside the core). Faults can be switched while it runs, from Python
(``service.faults.set(down=True)``) or from another process over HTTP::

    POST /v1/status     {"sub": ...} -> the answer, 404 unknown_subject, 400, 401
    GET  /v1/keys       the pass JWK Set
    GET  /_sim/faults   the current faults        POST /_sim/faults  {"down": true, ...}
    POST /_sim/status   {"sub": ..., "st": ...}   change a person's status live
    GET  /_sim/stats    request counters          POST /_sim/reset   clear faults and counters

The ``/_sim/`` control endpoints need no token and ignore faults (so ``down`` can always be
switched off again); keep the service on loopback. Logs name method, path and status only:
never a subject.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import random
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import Any

from simulators.answers import (
    GARBAGE_BODY,
    MAX_REQUEST_BYTES,
    fault_outcome,
    status_answer,
)
from simulators.answers import json_object as _json_object
from simulators.answers import rfc3339 as rfc3339  # re-exported: callers import it from here
from simulators.issuer import SIM_PASS_JWKS
from simulators.population import (
    STATUSES,
    Population,
    PopulationError,
    default_population_path,
    load,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_REQUEST_BYTES
# Idle keep-alive connections are dropped after this, so handler threads do not pile up.
IDLE_TIMEOUT_S = 30.0
_KNOWN_PATHS = frozenset(
    {"/v1/status", "/v1/keys", "/_sim/faults", "/_sim/status", "/_sim/stats", "/_sim/reset"}
)


def _check_fault(name: str, value: Any) -> Any:
    """``value`` if it is acceptable for fault ``name``; ValueError naming the problem."""
    if name in ("status_429", "down", "garbage"):
        if not isinstance(value, bool):
            raise ValueError(f"fault {name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {name} must be a number")
    if name == "latency_ms":
        if not 0 <= value <= 600_000:
            raise ValueError("fault latency_ms must be between 0 and 600000")
        return value
    if name == "error_rate":
        if not 0.0 <= value <= 1.0:
            raise ValueError("fault error_rate must be between 0 and 1")
        return float(value)
    if name == "retry_after_s":
        if not isinstance(value, int) or value < 0:
            raise ValueError("fault retry_after_s must be a non-negative integer")
        return value
    known = ", ".join(f.name for f in fields(Faults) if f.init)
    raise ValueError(f"unknown fault {name!r} (known: {known})")


@dataclass
class Faults:
    """What goes wrong, switchable while the service runs (thread-safe through ``set``).

    ``latency_ms`` delays every answer; ``down`` closes connections without answering;
    ``status_429`` answers 429 with ``Retry-After: retry_after_s``; ``error_rate`` answers
    503 with that probability; ``garbage`` answers 200 with a body that is not JSON.
    """

    latency_ms: float = 0
    error_rate: float = 0.0
    status_429: bool = False
    retry_after_s: int = 1
    down: bool = False
    garbage: bool = False
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name, value in self.snapshot().items():
            _check_fault(name, value)

    def set(self, **changes: Any) -> None:
        """Change some faults at once; ValueError (and no change) if any value is wrong."""
        checked = {name: _check_fault(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in checked.items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Back to a healthy service."""
        self.set(**{f.name: f.default for f in fields(self) if f.init})

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of all faults, as a JSON-ready dict."""
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.init}


class Stats:
    """Counters of API requests (``/_sim/`` requests are not counted).

    ``requests`` counts every API request read; each one is either answered (counted in
    ``by_status`` under its HTTP status) or ``dropped`` (closed unanswered while down).
    ``connections`` counts accepted TCP connections, so tests can see keep-alive reuse.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._dropped = 0
        self._connections = 0
        self._by_status: Counter[int] = Counter()

    @property
    def requests(self) -> int:
        """API requests read."""
        with self._lock:
            return self._requests

    @property
    def dropped(self) -> int:
        """API requests closed without an answer."""
        with self._lock:
            return self._dropped

    @property
    def connections(self) -> int:
        """TCP connections accepted (control connections included)."""
        with self._lock:
            return self._connections

    @property
    def by_status(self) -> dict[int, int]:
        """Answered API requests by HTTP status code."""
        with self._lock:
            return dict(self._by_status)

    def snapshot(self) -> dict[str, Any]:
        """All counters as a JSON-ready dict."""
        with self._lock:
            return {
                "requests": self._requests,
                "dropped": self._dropped,
                "connections": self._connections,
                "by_status": {str(code): n for code, n in sorted(self._by_status.items())},
            }

    def reset(self) -> None:
        """All counters back to zero."""
        with self._lock:
            self._requests = self._dropped = self._connections = 0
            self._by_status.clear()

    def _count(self, *, request: bool = False, dropped: bool = False, status: int = 0) -> None:
        with self._lock:
            self._requests += request
            self._dropped += dropped
            if status:
                self._by_status[status] += 1

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1


class _BadBody(Exception):
    """The request body cannot be read; the connection must then be closed."""


class _Server(ThreadingHTTPServer):
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
    server: _Server

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


_BEARER = {"WWW-Authenticate": 'Bearer realm="ashyq-sim"'}


class StatusService:
    """The simulated status authority on a background thread; use as a context manager.

    ``population`` answers the lookups and may be changed live; ``token`` (if set) is the
    bearer token kiosks must send; ``jwks`` is served at ``/v1/keys`` (default: the shipped
    TEST pass keys); ``max_age_s`` goes into every answer; ``seed`` drives ``error_rate``;
    ``clock`` gives ``as_of``. ``port=0`` picks a free port; ``url`` tells which.
    """

    def __init__(
        self,
        population: Population,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        jwks: dict[str, Any] | None = None,
        max_age_s: int = 300,
        seed: int = 2021,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.population = population
        self.host = host
        self.port = port
        self.token = token
        self.jwks = jwks if jwks is not None else json.loads(SIM_PASS_JWKS.read_text("utf-8"))
        self.max_age_s = max_age_s
        self.clock = clock
        self.faults = Faults()
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    def start(self) -> StatusService:
        """Listen and serve on a background thread; OSError if the port cannot be bound."""
        if self._server is not None:
            raise RuntimeError("status service already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        # Keep the bound port: a restarted service comes back at the same URL.
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms
            name="sim-status-service",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (idle keep-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in injected latency
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> StatusService:
        # Idempotent, so ``with service.start():`` works as well as ``with service:``.
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _track(self, conn: socket.socket) -> None:
        self.stats._count_connection()
        with self._connections_lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)


# --- running it standalone ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a standalone status service (shared with ``simulators.cli``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    parser.add_argument(
        "--population", type=Path, default=None, help="population JSONL (default: shipped)"
    )
    parser.add_argument("--token", default=None, help="bearer token kiosks must send")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay every answer")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 503 answers")
    parser.add_argument("--max-age-s", type=int, default=300, help="max_age of answers")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the error-rate dice")


def run_foreground(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; prints the URL on stdout once listening."""
    try:
        population = load(args.population)
    except PopulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    service = StatusService(
        population,
        host=args.host,
        port=args.port,
        token=args.token,
        max_age_s=args.max_age_s,
        seed=args.seed,
    )
    try:
        service.faults.set(latency_ms=args.latency_ms, error_rate=args.error_rate)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        service.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        print(service.url, flush=True)
        source = args.population or default_population_path()
        auth = "token required" if args.token else "no token"
        print(f"status service: {len(population)} people from {source}, {auth}", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.stop()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.status_service --port 8080 --population FILE --token TOKEN``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.status_service", description="Run the simulated authority."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run_foreground(args)


if __name__ == "__main__":
    sys.exit(main())
