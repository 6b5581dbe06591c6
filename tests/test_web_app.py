"""The web face over real HTTP: the display's JSON and server push, its page and files,
/metrics (and its token beyond loopback), /healthz, the console's mount, and the privacy of
every answer after real decisions of each kind through the daemon."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.config import load_config
from kiosk.gate.view import HEALTH_PARTS, GateView, LastDecision
from kiosk.liveness import Liveness
from kiosk.metrics import Metrics
from kiosk.web.app import WebFace, register_console, start_web
from kiosk.web.pages import static_file
from kiosk.web.server import Routes, WebServer
from support import write_config

ICONS = ("qr", "spinner", "check", "cross", "hand", "exit", "padlock", "clock", "warning")


class Live:
    """A liveness on a clock the test moves."""

    def __init__(self) -> None:
        self.t = 0.0
        self.liveness = Liveness(now=lambda: self.t)


@pytest.fixture
def gate(tmp_path) -> Iterator[tuple[WebServer, GateView, Live, list]]:
    cfg = load_config(write_config(tmp_path, None, camera={"enabled": True}))
    view = GateView()
    live = Live()
    metrics = Metrics(version="0.1.0")
    view.subscribe(metrics)
    emitted: list = []
    server = start_web(cfg, view=view, emit=emitted.append, liveness=live.liveness, metrics=metrics)
    try:
        yield server, view, live, emitted
    finally:
        server.stop()


def get(server: WebServer, path: str, headers: dict[str, str] | None = None):
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def screen(server: WebServer) -> dict:
    resp, body = get(server, "/api/display")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    return json.loads(body)


def ok_health(**parts: str):
    return MappingProxyType(dict.fromkeys(HEALTH_PARTS, "ok") | parts)


def test_the_display_json_follows_the_gate(gate):
    server, view, _, _ = gate
    view.publish(health=ok_health(), light="idle")
    assert screen(server)["screen"] == "idle"
    view.publish(offline=True)
    assert [line["key"] for line in screen(server)["lines"]] == ["show_code", "offline"]
    last = LastDecision("deny", "expired", None, "pass", "camera", 3.0, time.time(), "92********51")
    view.publish(light="deny", last_decision=last)
    s = screen(server)
    assert (s["screen"], s["holder"]) == ("deny", "92********51")
    view.publish(light="idle")
    assert screen(server)["screen"] == "idle"
    view.publish(mode="lockdown", light="locked")
    assert screen(server)["screen"] == "lockdown"
    view.publish(mode="emergency")
    assert screen(server)["flash"] is True
    view.publish(mode="closed")
    assert screen(server)["screen"] == "closed"
    view.publish(mode="normal", health=ok_health(camera="down", scanner="off"))
    assert screen(server)["screen"] == "out_of_order"  # the configured camera is gone


def read_events(sock_file, until, deadline_s: float = 10.0) -> list[tuple[str, str]]:
    """SSE events (name, data) read until ``until(events)`` holds."""
    events: list[tuple[str, str]] = []
    name, data = "message", []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        line = sock_file.readline().decode()
        if not line:
            break
        line = line.rstrip("\n")
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
                if until(events):
                    return events
            name, data = "message", []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
    raise AssertionError(f"stream ended or timed out with {events}")


def open_stream(server: WebServer):
    host, port = server.address
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(b"GET /api/display/stream HTTP/1.1\r\nHost: kiosk\r\n\r\n")
    f = sock.makefile("rb")
    status = f.readline()
    assert b"200" in status
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    assert headers["content-type"].startswith("text/event-stream")
    return sock, f


def test_the_stream_pushes_each_change_and_pings_in_between(gate):
    server, view, _, _ = gate
    view.publish(health=ok_health(), light="idle")
    sock, f = open_stream(server)
    try:
        first = read_events(f, lambda ev: any(n == "screen" for n, _ in ev))
        assert json.loads(first[-1][1])["screen"] == "idle"
        last = LastDecision("admit", "admitted", "green", "online", "scanner", 5.0, time.time())
        t0 = time.monotonic()
        view.publish(light="admit", last_decision=last)
        events = read_events(f, lambda ev: any(n == "screen" for n, _ in ev))
        pushed = time.monotonic() - t0
        assert json.loads(events[-1][1])["screen"] == "admit"
        print(f"admit pushed in {pushed * 1000:.1f} ms")
        view.publish(light="idle")
        events = read_events(f, lambda ev: any(n == "screen" for n, _ in ev))
        assert json.loads(events[-1][1])["screen"] == "idle"
        pings = read_events(f, lambda ev: any(n == "ping" for n, _ in ev), deadline_s=5)
        assert pings[-1][0] == "ping"
    finally:
        f.close()
        sock.close()


def test_the_stream_shows_the_spinner_150_ms_into_a_lookup_with_no_other_change(gate):
    server, view, _, _ = gate
    view.publish(health=ok_health(), light="idle")
    sock, f = open_stream(server)
    try:
        read_events(f, lambda ev: any(n == "screen" for n, _ in ev))
        view.publish(checking=True)  # the view notes the time; nothing else changes after
        events = read_events(
            f, lambda ev: any(n == "screen" and '"checking"' in d for n, d in ev), deadline_s=5
        )
        assert json.loads(events[-1][1])["screen"] == "checking"
    finally:
        f.close()
        sock.close()


def test_streams_end_when_the_server_stops(tmp_path):
    cfg = load_config(write_config(tmp_path, None))
    view = GateView()
    server = start_web(
        cfg, view=view, emit=lambda e: None, liveness=Liveness(), metrics=Metrics(version="x")
    )
    sock, f = open_stream(server)
    read_events(f, lambda ev: bool(ev))
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive()
    sock.settimeout(5)
    rest = f.read()  # the server closed the stream: the read ends
    assert isinstance(rest, bytes)
    sock.close()


def test_the_page_and_its_files_are_served_with_no_inline_code(gate):
    server, _, _, _ = gate
    resp, page = get(server, "/")
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/html")
    html = page.decode()
    assert 'src="/static/display.js"' in html and 'href="/static/display.css"' in html
    assert re.search(r"<script[^>]*>\s*[^<\s]", html) is None  # no inline script
    assert "<style" not in html and " style=" not in html and " on" not in html.replace("<html", "")
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    for name, kind in (("display.js", "text/javascript"), ("display.css", "text/css")):
        resp, body = get(server, f"/static/{name}")
        assert resp.status == 200 and resp.getheader("Content-Type").startswith(kind)
        assert b"http://" not in body and b"https://" not in body and b"@import" not in body
    for icon in ICONS:
        resp, body = get(server, f"/static/icon-{icon}.svg")
        assert resp.status == 200 and resp.getheader("Content-Type") == "image/svg+xml", icon
        assert b"<script" not in body and b"href" not in body
    assert get(server, "/static/../app.py")[0].status == 404
    assert get(server, "/static/nothing.js")[0].status == 404
    assert static_file("display.html") is not None


def test_the_page_knows_every_icon_and_the_lost_screen(gate):
    server, _, _, _ = gate
    js = static_file("display.js")
    assert js is not None
    assert b"/api/display/stream" in js and b"/api/display/lost" in js
    assert b"3000" in js  # out of order after more than 3 s without the kiosk
    resp, body = get(server, "/api/display/lost")
    lost = json.loads(body)
    assert resp.status == 200 and lost["screen"] == "out_of_order"
    assert lost["lines"][0]["text"]["kk"] == "Жұмыс істемейді"


def test_metrics_scrape_parses(gate):
    server, view, _, _ = gate
    view.publish(health=ok_health(), occupancy=3, capacity=10)
    view.recorded(
        {
            "type": "decision",
            "decision": "admit",
            "reason": "admitted",
            "via": "online",
            "source": "camera",
            "subject": "0123456789abcdef0123",
            "latency_ms": 20.0,
        }
    )
    resp, body = get(server, "/metrics")
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"ashyq_decisions", "ashyq_occupancy", "ashyq_device_up"} <= names
    assert b"0123456789abcdef0123" not in body


def test_healthz_is_200_while_promises_hold_and_503_once_one_is_broken(gate):
    server, _, live, _ = gate
    live.liveness.beat("controller", 5.0)
    resp, body = get(server, "/healthz")
    assert resp.status == 200 and json.loads(body)["ok"] is True
    live.t = 6.0
    resp, body = get(server, "/healthz")
    doc = json.loads(body)
    assert resp.status == 503 and doc["ok"] is False and doc["stale"] == ["controller"]


def remote_cfg(tmp_path, **web):
    return load_config(
        write_config(tmp_path, None, web={"listen": "0.0.0.0:0", "allow_plain_remote": True, **web})
    )


def serve(cfg) -> WebServer:
    return start_web(
        cfg, view=GateView(), emit=lambda e: None, liveness=Liveness(), metrics=Metrics(version="x")
    )


def test_metrics_beyond_loopback_need_the_bearer_token(tmp_path):
    server = serve(remote_cfg(tmp_path, metrics_token="scrape-token-0123456789"))
    try:
        _, port = server.address
        conn_server = types.SimpleNamespace(address=("127.0.0.1", port))
        resp, _ = get(conn_server, "/metrics")  # type: ignore[arg-type]
        assert resp.status == 401 and resp.getheader("WWW-Authenticate").startswith("Bearer")
        resp, _ = get(conn_server, "/metrics", {"Authorization": "Bearer wrong"})  # type: ignore[arg-type]
        assert resp.status == 401
        good = {"Authorization": "Bearer scrape-token-0123456789"}
        resp, body = get(conn_server, "/metrics", good)  # type: ignore[arg-type]
        assert resp.status == 200 and b"ashyq_build_info" in body
        assert get(conn_server, "/healthz")[0].status == 200  # type: ignore[arg-type]
    finally:
        server.stop()


def test_metrics_beyond_loopback_without_a_token_are_refused(tmp_path):
    server = serve(remote_cfg(tmp_path))
    try:
        _, port = server.address
        resp, body = get(types.SimpleNamespace(address=("127.0.0.1", port)), "/metrics")  # type: ignore[arg-type]
        assert resp.status == 403 and b"metrics_token" in body
    finally:
        server.stop()


def test_the_console_is_mounted_with_the_arguments_it_names(monkeypatch):
    seen = {}
    fake = types.ModuleType("kiosk.web.console")

    def register(routes, *, view, accounts_file):
        seen.update(view=view, accounts_file=accounts_file)

    fake.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kiosk.web.console", fake)
    assert register_console(Routes(), {"view": "V", "accounts_file": "A", "emit": "E"})
    assert seen == {"view": "V", "accounts_file": "A"}


def test_without_a_console_the_rest_still_serves(monkeypatch):
    monkeypatch.setitem(sys.modules, "kiosk.web.console", None)  # import fails as if missing
    try:
        register_console(Routes(), {})
    except ModuleNotFoundError:
        pytest.fail("a missing console must not stop the web face")


def test_a_taken_port_is_a_journal_line_not_a_crash(tmp_path, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = load_config(write_config(tmp_path, None, web={"listen": f"127.0.0.1:{port}"}))
        face = WebFace(
            cfg,
            view=GateView(),
            emit=lambda e: None,
            liveness=Liveness(),
            metrics=Metrics(version="x"),
        )
        face.start()
        face.stop()
    assert face.server is None
    assert "web: not started" in caplog.text


def self_signed(tmp_path) -> tuple[str, str]:
    """A throw-away certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "web.crt", tmp_path / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_tls_serves_https_with_the_configured_certificate(tmp_path):
    import ssl

    cert, key = self_signed(tmp_path)
    cfg = load_config(
        write_config(
            tmp_path, None, web={"listen": "127.0.0.1:0", "tls_cert": cert, "tls_key": key}
        )
    )
    server = serve(cfg)
    try:
        assert server.url.startswith("https://")
        context = ssl.create_default_context(cafile=cert)
        conn = http.client.HTTPSConnection(*server.address, timeout=10, context=context)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["ok"] is True
        conn.close()
    finally:
        server.stop()


def test_an_unusable_certificate_is_a_clear_error(tmp_path):
    from kiosk.errors import KioskError

    (tmp_path / "bad.crt").write_text("not a certificate")
    (tmp_path / "bad.key").write_text("not a key")
    web = {"tls_cert": "bad.crt", "tls_key": "bad.key"}
    cfg = load_config(write_config(tmp_path, None, web=web))
    with pytest.raises(KioskError, match=r"\[web\] tls_cert/tls_key unusable"):
        serve(cfg)


def test_a_console_that_needs_more_than_the_app_gives_is_left_off(monkeypatch, caplog):
    fake = types.ModuleType("kiosk.web.console")

    def register(routes, *, view, journal):
        raise AssertionError("must not be called")

    fake.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kiosk.web.console", fake)
    assert not register_console(Routes(), {"view": "V"})
    assert "console needs ['journal']" in caplog.text


def test_a_callers_routes_are_mounted_too(tmp_path):
    from kiosk.web.server import Response

    cfg = load_config(write_config(tmp_path, None))
    face = WebFace(
        cfg, view=GateView(), emit=lambda e: None, liveness=Liveness(), metrics=Metrics(version="x")
    )
    face.extra_routes = lambda routes: routes.add(
        "GET", "/api/sim/ping", lambda r: Response.text(200, "pong")
    )
    face.start()
    try:
        assert face.server is not None
        assert get(face.server, "/api/sim/ping")[1] == b"pong"
    finally:
        face.stop()


def test_healthz_is_503_until_the_controller_has_turned_once(tmp_path):
    cfg = load_config(write_config(tmp_path, None))
    liveness = Liveness()
    face = WebFace(
        cfg, view=GateView(), emit=lambda e: None, liveness=liveness, metrics=Metrics(version="x")
    )
    face.start()
    try:
        assert face.server is not None
        resp, body = get(face.server, "/healthz")
        assert resp.status == 503 and json.loads(body)["stale"] == ["controller"]
        liveness.beat("controller", 5.0)
        assert get(face.server, "/healthz")[0].status == 200
        liveness.forget("controller")
        assert get(face.server, "/healthz")[0].status == 503
    finally:
        face.stop()
