"""The web server: routes, limits, slow clients, server push, a handler's bug."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from kiosk.web.server import EventStream, Request, Response, Routes, WebServer, sse_frame


def _server(routes: Routes, **kw) -> WebServer:
    return WebServer(routes, host="127.0.0.1", port=0, **kw).start()


def _get(server: WebServer, path: str, method: str = "GET", body: bytes | None = None):
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


@pytest.fixture
def routes() -> Routes:
    r = Routes()
    r.add("GET", "/hello", lambda req: Response.text(200, "hi " + req.query.get("n", ["?"])[0]))
    r.add("POST", "/echo", lambda req: Response(200, req.body))
    return r


def test_a_route_answers_with_the_security_headers(routes) -> None:
    with _server(routes) as server:
        resp, data = _get(server, "/hello?n=kz")
    assert (resp.status, data) == (200, b"hi kz")
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert "default-src 'self'" in resp.getheader("Content-Security-Policy")


def test_unknown_paths_are_404_and_wrong_methods_405(routes) -> None:
    with _server(routes) as server:
        assert _get(server, "/nope")[0].status == 404
        assert _get(server, "/hello", "POST", b"")[0].status == 405
        assert _get(server, "/echo", "GET")[0].status == 405


def test_an_oversized_body_is_refused_before_it_is_read(routes) -> None:
    with _server(routes, max_body_bytes=100) as server:
        resp, _ = _get(server, "/echo", "POST", b"x" * 101)
        assert resp.status == 413
        assert _get(server, "/echo", "POST", b"y" * 100)[0].status == 200


def test_malformed_requests_get_a_clear_answer(routes) -> None:
    with _server(routes) as server:
        host, port = server.address
        for raw in (
            b"GARBAGE\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ):
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(raw)
                answer = s.recv(200)
            # A request line too broken for HTTP/1 is answered as HTTP/0.9: the body alone.
            assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4", b"400 ")), raw
        assert _get(server, "/hello")[0].status == 200  # and it still serves


def test_a_silent_client_holds_no_one_up(routes) -> None:
    with _server(routes, timeout_s=0.5) as server:
        host, port = server.address
        silent = [socket.create_connection((host, port)) for _ in range(3)]
        try:
            assert _get(server, "/hello")[0].status == 200
        finally:
            for s in silent:
                s.close()


def test_a_full_house_is_told_503_at_once(routes) -> None:
    with _server(routes, max_connections=2, timeout_s=5) as server:
        host, port = server.address
        held = [socket.create_connection((host, port)) for _ in range(2)]
        try:
            # The two slots are held by silent clients: the next one is refused, not queued.
            deadline_ok = False
            for _ in range(50):
                with socket.create_connection((host, port), timeout=10) as s:
                    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    line = s.recv(100).split(b"\r\n")[0]
                if b"503" in line:
                    deadline_ok = True
                    break
            assert deadline_ok
        finally:
            for s in held:
                s.close()


def test_a_handler_bug_is_500_and_logged_with_where_not_the_data(caplog) -> None:
    def broken(req: Request) -> Response:
        raise ValueError("iin:921029350851")

    r = Routes()
    r.add("GET", "/broken", broken)
    with _server(r) as server, caplog.at_level(logging.ERROR):
        assert _get(server, "/broken")[0].status == 500
    assert "test_web_server.py" in caplog.text and "921029350851" not in caplog.text


def test_a_stream_pushes_frames_and_ends_when_the_server_stops() -> None:
    started = threading.Event()

    def stream(req: Request) -> EventStream:
        def frames() -> Iterator[bytes]:
            yield sse_frame('{"n": 1}', event="gate", id_=1)
            started.set()
            while not req.stopping.wait(0.05):
                yield b": keep-alive\n\n"

        return EventStream(frames())

    r = Routes()
    r.add("GET", "/stream", stream)
    server = _server(r)
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/stream")
    resp = conn.getresponse()
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    first = resp.fp.readline() + resp.fp.readline() + resp.fp.readline()
    assert first == b'event: gate\nid: 1\ndata: {"n": 1}\n'
    assert started.wait(10)
    server.stop()
    rest = resp.read()  # ends: the server closed the stream
    conn.close()
    assert b"keep-alive" in rest or rest == b"\n" or rest.startswith(b"\n")


def test_routes_refuse_a_second_registration() -> None:
    r = Routes()
    r.add("GET", "/x", lambda req: Response())
    with pytest.raises(Exception, match="twice"):
        r.add("GET", "/x", lambda req: Response())


def test_sse_frame_splits_lines() -> None:
    assert sse_frame("a\nb") == b"data: a\ndata: b\n\n"
