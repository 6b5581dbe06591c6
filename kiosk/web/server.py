"""The kiosk's small web server (display.md): the display, the console, metrics and liveness.

Standard library only (``http.server``): a threaded daemon on a Pi needs no framework, and a
minimal server-push page costs the least memory this way. One listening thread accepts; each
connection gets a short-lived handler thread, at most ``max_connections`` at once (beyond
that a request is answered 503 at once), each with a socket timeout, so a slow or silent
client can hold one slot for a few seconds at most and never the gate: handlers only read
the observable gate (kiosk/gate/view.py) and hand commands to the controller as inputs.

Routes are registered by the modules that serve them (``Routes.add``); a handler takes a
:class:`Request` and returns a :class:`Response` or an :class:`EventStream` (Server-Sent
Events: the handler's iterator yields ready-made event frames, and ends when the server
stops or the client goes).
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kiosk.errors import KioskError
from kiosk.logs import log_bug

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_CONNECTIONS = 32
SOCKET_TIMEOUT_S = 10.0
#: Headers every answer carries: nothing from elsewhere may run in or frame the kiosk's pages.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
)


@dataclass(frozen=True)
class Request:
    """One HTTP request, already read and size-checked."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    client: str  # the peer's address
    cookies: Mapping[str, str]
    stopping: threading.Event  # set when the server stops: long streams end

    def header(self, name: str, default: str = "") -> str:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    """An answer: status, body and headers (security headers are added by the server)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        """A short plain-text answer."""
        return cls(status, text.encode())


@dataclass
class EventStream:
    """A Server-Sent Events answer: ``frames`` yields encoded frames (see ``sse_frame``)."""

    frames: Iterator[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], "Response | EventStream"]


def sse_frame(data: str, *, event: str | None = None, id_: int | None = None) -> bytes:
    """One Server-Sent Events frame; ``data`` is one line (JSON has no raw newlines)."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if id_ is not None:
        lines.append(f"id: {id_}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


class Routes:
    """Exact paths, or prefixes ending in ``/`` when added with ``prefix=True``."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._prefix: list[tuple[str, str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler, *, prefix: bool = False) -> None:
        """Serve ``method path`` (a prefix match when ``prefix``)."""
        key = (method.upper(), path)
        if prefix:
            self._prefix.append((key[0], path, handler))
        else:
            if key in self._exact:
                raise KioskError(f"web route {method} {path} registered twice")
            self._exact[key] = handler

    def find(self, method: str, path: str) -> Handler | int:
        """The handler, or 404 (no such path) / 405 (path exists, not with this method)."""
        handler = self._exact.get((method, path))
        if handler is not None:
            return handler
        for m, p, h in self._prefix:
            if m == method and path.startswith(p):
                return h
        known = any(p == path for _, p in self._exact) or any(
            path.startswith(p) for _, p, _ in self._prefix
        )
        return 405 if known else 404


class WebServer:
    """Serves ``routes`` on ``host:port`` (port 0: a free one) until ``stop``."""

    def __init__(
        self,
        routes: Routes,
        *,
        host: str = "127.0.0.1",
        port: int = 8088,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
        max_body_bytes: int = MAX_BODY_BYTES,
        timeout_s: float = SOCKET_TIMEOUT_S,
    ) -> None:
        self.routes = routes
        self.stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_body = max_body_bytes
        handler = _handler_class(self, timeout_s)
        try:
            self._httpd = _Server((host, port), handler, self._slots)
        except OSError as exc:
            raise KioskError(f"web server cannot listen on {host}:{port}: {exc.strerror}") from exc
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.tls = ssl_context is not None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self.address
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self) -> WebServer:
        """Serve in a thread of its own (named ``web``); a second call changes nothing."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="web", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end the streams, close the socket."""
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- called by the handler threads ---------------------------------------------------

    def max_body(self) -> int:
        """The largest request body accepted."""
        return self._max_body


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Any, slots: threading.Semaphore):
        self._slots = slots
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name: seconds on a kiosk
        # network without a resolver, for a name nobody reads.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        # A full house is answered at once rather than queued: no client can starve the rest.
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):  # a client gone already needs no answer
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Socket errors of a client that went away are not news; say no more than that.
        log.debug("web: a connection from %s ended with an error", client_address[0])


def _handler_class(server: WebServer, timeout_s: float) -> type[http.server.BaseHTTPRequestHandler]:
    class _Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = timeout_s  # a client that sends nothing for this long is let go
        server_version = "ashyq-kiosk"
        sys_version = ""
        # The standard library's errors (malformed request lines) in plain words, not HTML.
        error_message_format = "%(code)d %(message)s\n"
        error_content_type = "text/plain; charset=utf-8"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
            # Paths may carry what a person typed; access lines stay out of the journal.
            return

        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            self._serve()

        def do_POST(self) -> None:  # noqa: N802 (stdlib name)
            self._serve()

        def do_HEAD(self) -> None:  # noqa: N802 (stdlib name)
            self._serve()

        def _serve(self) -> None:
            try:
                request = self._read()
            except _Refused as refused:
                self._send(Response.text(refused.status, refused.text), close=True)
                return
            found = server.routes.find(
                "GET" if request.method == "HEAD" else request.method, request.path
            )
            if isinstance(found, int):
                self._send(Response.text(found, "not found" if found == 404 else "not allowed"))
                return
            try:
                answer = found(request)
            except Exception as exc:  # noqa: BLE001 - a handler's bug must not end the server: say where
                log_bug(log, f"web {request.method} {request.path.split('?')[0][:80]}", exc)
                answer = Response.text(500, "internal error")
            if isinstance(answer, EventStream):
                self._stream(answer)
            else:
                self._send(answer, head=request.method == "HEAD")

        def _read(self) -> Request:
            split = urlsplit(self.path)
            if not split.path.startswith("/"):
                raise _Refused(400, "bad request")
            if "transfer-encoding" in {k.lower() for k in self.headers}:
                raise _Refused(411, "length required")
            raw_length = self.headers.get("Content-Length", "0") or "0"
            if not raw_length.isascii() or not raw_length.isdigit():
                raise _Refused(400, "bad length")
            length = int(raw_length)
            if length > server.max_body():
                raise _Refused(413, "request too large")
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                raise _Refused(400, "short body")
            cookies: dict[str, str] = {}
            try:
                jar = SimpleCookie(self.headers.get("Cookie", ""))
                cookies = {k: m.value for k, m in jar.items()}
            except CookieError:
                cookies = {}
            return Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, max_num_fields=20),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client=str(self.client_address[0]),
                cookies=cookies,
                stopping=server.stopping,
            )

        def _send(self, answer: Response, *, head: bool = False, close: bool = False) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in (*SECURITY_HEADERS, *answer.headers):
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if not head:
                self.wfile.write(answer.body)

        def _stream(self, stream: EventStream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            for name, value in (*SECURITY_HEADERS, *stream.headers):
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for frame in stream.frames:
                    if server.stopping.is_set():
                        break
                    self.wfile.write(frame)
                    self.wfile.flush()
            except (OSError, ValueError):
                pass  # the page went away (closed tab, reload): the stream just ends
            finally:
                close = getattr(stream.frames, "close", None)
                if close is not None:
                    close()

    return _Handler


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def free_port() -> int:
    """A free TCP port on loopback (tests and ``kiosk sim --web 127.0.0.1:0``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
