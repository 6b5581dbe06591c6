"""The technician console on a real server: login, limits, cookies, CSRF, roles, actions,
the live state and its server push, the simulated world's controls, and privacy."""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kiosk.clock import FakeClock, rfc3339_ms
from kiosk.errors import KioskError
from kiosk.gate.inputs import Command
from kiosk.gate.view import GateView, LastDecision
from kiosk.web.auth import FAILURES_ALLOWED, LOCK_BASE_S, Account, format_accounts, hash_password
from kiosk.web.console import Console, register
from kiosk.web.server import Routes, WebServer

PASSWORDS = {"alice": "alice's long password", "bob": "bob's long password"}
SESSION_S = 600.0


@dataclass
class Gate:
    """Stands in for the controller at its input: records each Command and answers it."""

    answer: tuple[bool, str | None] | None = (True, None)
    commands: list[Command] = field(default_factory=list)

    def emit(self, event: Any) -> None:
        self.commands.append(event)
        if self.answer is not None and event.done is not None:
            event.done(*self.answer)


class Client:
    """A browser's part: one cookie jar, JSON in and out."""

    def __init__(self, server: WebServer) -> None:
        self.host, self.port = server.address
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None
        self.last_set_cookie = ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any] | bytes, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        hdrs = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        set_cookie = resp.getheader("Set-Cookie")
        if set_cookie:
            self.last_set_cookie = set_cookie
            name, _, rest = set_cookie.partition("=")
            value = rest.split(";")[0]
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(payload), resp
        return resp.status, payload, resp

    def login(self, name: str, password: str | None = None) -> tuple[int, Any]:
        status, body, _ = self.request(
            "POST", "/console/login", {"name": name, "password": password or PASSWORDS[name]}
        )
        if status == 200:
            self.csrf = body["csrf"]
        return status, body

    def act(self, action: str, **extra: Any) -> tuple[int, Any]:
        status, body, _ = self.request(
            "POST", "/api/console/action", {"action": action, "csrf": self.csrf, **extra}
        )
        return status, body


@dataclass
class Rig:
    server: WebServer
    console: Console
    view: GateView
    gate: Gate
    clock: FakeClock

    def client(self) -> Client:
        return Client(self.server)


def accounts_file(tmp_path) -> Any:
    path = tmp_path / "console-accounts"
    accounts = {
        "alice": Account("alice", "operator", hash_password(PASSWORDS["alice"], n=2**10)),
        "bob": Account("bob", "viewer", hash_password(PASSWORDS["bob"], n=2**10)),
    }
    path.write_text(format_accounts(accounts))
    path.chmod(0o640)  # as kiosk passwd writes it
    return path


@pytest.fixture
def make(tmp_path) -> Iterator[Any]:
    servers: list[WebServer] = []

    def build(*, view: GateView | None = None, sim: Any = None, tz: str = "Asia/Almaty") -> Rig:
        view = view or GateView()
        gate = Gate()
        clock = FakeClock(start=1_764_590_400.0)  # 2025-12-01 12:00 UTC, 17:00 in Almaty
        routes = Routes()
        console = register(
            routes,
            view=view,
            emit=gate.emit,
            accounts_file=accounts_file(tmp_path),
            session_s=SESSION_S,
            timezone=tz,
            clock=clock,
            sim=sim,
        )
        server = WebServer(routes, host="127.0.0.1", port=0).start()
        servers.append(server)
        return Rig(server, console, view, gate, clock)

    yield build
    for s in servers:
        s.stop()


# -- the page ---------------------------------------------------------------------------------


def test_the_page_and_its_assets_come_from_the_kiosk_with_no_inline_code(make) -> None:
    c = make().client()
    status, html, resp = c.request("GET", "/console")
    assert status == 200 and resp.getheader("Content-Type").startswith("text/html")
    page = html.decode()
    assert '<script src="/static/console.js"' in page and "<script>" not in page
    assert "style=" not in page and "http://" not in page and "https://" not in page
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        status, data, resp = c.request("GET", f"/static/{name}")
        assert status == 200 and resp.getheader("Content-Type").startswith(kind)
        outside = data.replace(b'"http://www.w3.org/2000/svg"', b"")  # a name, not a load
        assert b"http://" not in outside and b"https://" not in outside
    assert c.request("GET", "/console/nope")[0] == 404


def test_the_api_needs_a_session(make) -> None:
    c = make().client()
    for method, path in (
        ("GET", "/api/console/state"),
        ("GET", "/api/console/stream"),
        ("POST", "/api/console/action"),
        ("POST", "/console/logout"),
    ):
        status, body, _ = c.request(method, path, {"action": "lockdown", "csrf": "x"})
        assert (status, body["error"]) == (401, "login"), path
    c.cookies["kiosk_session"] = "made-up-token"
    assert c.request("GET", "/api/console/state")[0] == 401


# -- login --------------------------------------------------------------------------------


def test_a_login_sets_a_strict_http_only_cookie_that_expires(make, caplog) -> None:
    rig = make()
    c = rig.client()
    with caplog.at_level(logging.INFO, logger="kiosk.web.console"):
        status, body = c.login("alice")
    assert status == 200 and body["account"] == {
        "name": "alice",
        "role": "operator",
        "may_act": True,
    }
    attrs = [a.strip() for a in c.last_set_cookie.split(";")]
    assert attrs[0].startswith("kiosk_session=") and len(attrs[0]) > 50
    assert {"Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={int(SESSION_S)}"} <= set(attrs)
    assert "Secure" not in attrs  # plain HTTP on loopback
    assert "alice (operator) logged in from 127.0.0.1" in caplog.text
    status, state, _ = c.request("GET", "/api/console/state")
    assert status == 200 and state["csrf"] == c.csrf and state["account"]["name"] == "alice"


def test_over_tls_the_cookie_is_secure_and_host_only(tmp_path) -> None:
    import ssl

    from test_fleet_link import _make_pki

    pki = _make_pki(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
    routes = Routes()
    register(
        routes, view=GateView(), emit=Gate().emit, accounts_file=accounts_file(tmp_path), tls=True
    )
    with WebServer(routes, host="127.0.0.1", port=0, ssl_context=server_ctx) as server:
        host, port = server.address
        client_ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=client_ctx)
        body = json.dumps({"name": "alice", "password": PASSWORDS["alice"]})
        origin = f"https://{host}:{port}"
        conn.request("POST", "/console/login", body=body, headers={"Origin": origin})
        resp = conn.getresponse()
        resp.read()
        cookie = resp.getheader("Set-Cookie")
        conn.request(
            "POST", "/console/login", body=body, headers={"Origin": f"http://{host}:{port}"}
        )
        plain = conn.getresponse()
        plain.read()
        conn.close()
    assert resp.status == 200
    attrs = [a.strip() for a in cookie.split(";")]
    assert attrs[0].startswith("__Host-kiosk_session=")
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs)
    assert plain.status == 403  # an http:// page is another origin than the https:// console


def test_a_wrong_password_is_refused_and_logged_without_the_password(make, caplog) -> None:
    c = make().client()
    with caplog.at_level(logging.INFO):
        assert c.login("alice", "not alice's password")[0] == 401
        assert c.login("alice's long password", "x")[0] == 401  # a password in the name field
    assert "login refused for account alice from 127.0.0.1 (1 failed)" in caplog.text
    assert "login refused for an unknown account name from 127.0.0.1" in caplog.text
    assert "not alice's password" not in caplog.text and "long password" not in caplog.text
    assert "kiosk_session" not in c.cookies


def test_failed_logins_lock_the_address_and_the_account_for_a_growing_time(make, caplog) -> None:
    rig = make()
    c = rig.client()
    for _ in range(FAILURES_ALLOWED):
        assert c.login("alice", "wrong password!")[0] == 401
    assert f"locked for {int(LOCK_BASE_S)} s" in caplog.text
    status, body, resp = c.request(
        "POST", "/console/login", {"name": "alice", "password": PASSWORDS["alice"]}
    )
    assert (status, body["error"]) == (429, "locked")  # even the right password waits
    assert resp.getheader("Retry-After") == str(int(LOCK_BASE_S))
    assert c.login("bob")[0] == 429  # the same address
    rig.clock.advance(LOCK_BASE_S)
    assert c.login("alice", "wrong again!")[0] == 401
    assert c.login("alice")[0] == 429  # locked again, twice as long
    rig.clock.advance(2 * LOCK_BASE_S)
    assert c.login("alice")[0] == 200


def test_the_account_lock_holds_from_another_address_too(make) -> None:
    rig = make()
    c = rig.client()
    for _ in range(FAILURES_ALLOWED):
        c.login("alice", "wrong password!")
    rig.console.limiter.succeeded("addr:127.0.0.1")  # as if the attacker moved address
    assert c.login("alice")[0] == 429
    assert c.login("bob")[0] == 200


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'{"name": 5, "password": "x"}', b"\xff\xfe", b"{}"],
)
def test_a_malformed_login_is_400(make, raw) -> None:
    status, body, _ = make().client().request("POST", "/console/login", raw=raw)
    assert status == 400 and body["ok"] is False


def test_an_oversized_json_body_is_400(make) -> None:
    c = make().client()
    c.login("alice")
    status, body = c.act("lockdown", padding="x" * 5000)
    assert (status, body["error"]) == (400, "too_large")


def test_a_session_expires_and_logout_ends_it(make) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    rig.clock.advance(SESSION_S - 1)
    assert c.request("GET", "/api/console/state")[0] == 200
    rig.clock.advance(1)
    assert c.request("GET", "/api/console/state")[0] == 401
    c.login("alice")
    status, body, _ = c.request("POST", "/console/logout", {"csrf": c.csrf})
    assert status == 200 and "Max-Age=0" in c.last_set_cookie
    assert c.request("GET", "/api/console/state")[0] == 401


def test_a_removed_account_loses_its_session(make, tmp_path) -> None:
    rig = make()
    c = rig.client()
    c.login("bob")
    path = tmp_path / "console-accounts"
    path.write_text("\n".join(ln for ln in path.read_text().splitlines() if "bob" not in ln))
    assert c.request("GET", "/api/console/state")[0] == 401


# -- CSRF and roles -----------------------------------------------------------------------


def test_a_post_without_the_csrf_token_or_with_a_wrong_one_is_refused(make, caplog) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    for body in ({"action": "lockdown"}, {"action": "lockdown", "csrf": "x" * 43}):
        status, answer, _ = c.request("POST", "/api/console/action", body)
        assert (status, answer["error"]) == (403, "csrf")
    assert rig.gate.commands == []
    assert "refused (no CSRF)" in caplog.text
    status, answer, _ = c.request(
        "POST", "/api/console/action", {"action": "lockdown"}, headers={"X-CSRF-Token": c.csrf}
    )
    assert status == 200 and answer["ok"] is True  # the header is as good as the field


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
    ],
)
def test_a_foreign_origin_or_referer_is_refused_even_with_the_token(make, headers) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    status, answer, _ = c.request(
        "POST", "/api/console/action", {"action": "lockdown", "csrf": c.csrf}, headers=headers
    )
    assert (status, answer["error"]) == (403, "origin")
    assert rig.gate.commands == []


def test_the_consoles_own_origin_is_accepted(make) -> None:
    rig = make()
    c = rig.client()
    own = f"http://{c.host}:{c.port}"
    status, _, _ = c.request(
        "POST",
        "/console/login",
        {"name": "alice", "password": PASSWORDS["alice"]},
        headers={"Origin": own},
    )
    assert status == 200
    c.csrf = c.request("GET", "/api/console/state")[1]["csrf"]
    status, answer, _ = c.request(
        "POST",
        "/api/console/action",
        {"action": "resume", "csrf": c.csrf},
        headers={"Origin": own, "Referer": own + "/console"},
    )
    assert status == 200 and answer["ok"] is True


def test_a_login_from_another_site_is_refused(make) -> None:
    c = make().client()
    status, _, _ = c.request(
        "POST",
        "/console/login",
        {"name": "alice", "password": PASSWORDS["alice"]},
        headers={"Origin": "http://evil.example"},
    )
    assert status == 403 and not c.cookies


def test_a_viewer_sees_everything_and_may_not_act(make, caplog) -> None:
    rig = make()
    c = rig.client()
    status, body = c.login("bob")
    assert body["account"]["may_act"] is False
    assert c.request("GET", "/api/console/state")[0] == 200
    for action in ("open_once", "lockdown", "resume", "reset_occupancy"):
        assert c.act(action) == (403, {"ok": False, "error": "viewer"})
    assert rig.gate.commands == []
    assert "bob (viewer) from 127.0.0.1 may not act (lockdown)" in caplog.text


# -- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["open_once", "lockdown", "resume", "reset_occupancy"])
def test_each_action_hands_the_controller_a_console_command_naming_the_account(
    make, caplog, action
) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    with caplog.at_level(logging.INFO, logger="kiosk.web.console"):
        assert c.act(action) == (200, {"ok": True, "error": None, "action": action})
    [cmd] = rig.gate.commands
    assert isinstance(cmd, Command)
    assert (cmd.cmd, cmd.origin, cmd.account, cmd.jti) == (action, "console", "alice", None)
    assert f"console: alice asked {action} from 127.0.0.1: done" in caplog.text


def test_a_refused_action_says_why_and_one_never_answered_says_so(make, caplog) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    rig.gate.answer = (False, "busy")
    assert c.act("open_once") == (200, {"ok": False, "error": "busy", "action": "open_once"})
    assert "alice asked open_once from 127.0.0.1: refused (busy)" in caplog.text
    rig.gate.answer = None
    rig.console.action_wait_s = 0.05
    status, body = c.act("lockdown")
    assert (status, body["ok"], body["error"]) == (504, False, "no_answer")


def test_an_unknown_action_is_400(make) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    assert c.act("reload_config")[0] == 400  # not a console action
    assert c.act("open_twice")[0] == 400
    assert rig.gate.commands == []


# -- what the page shows ------------------------------------------------------------------


def _decision(seq: int, at: float, **kw: Any) -> dict[str, Any]:
    event = {
        "type": "decision",
        "seq": seq,
        "ts": rfc3339_ms(at),
        "event_id": f"e{seq}",
        "kiosk_id": "k1",
        "venue_id": "v1",
        "decision": "deny",
        "reason": "status_not_allowed",
        "st": "red",
        "via": "online",
        "source": "camera",
        "subject": "0123456789abcdef0123",
        "latency_ms": 123.4,
    }
    event.update(kw)
    return event


def test_the_state_shows_the_gate_the_decisions_in_local_time_and_the_charts(make) -> None:
    rig = make()
    now = rig.clock.time()  # 17:00 in Almaty (UTC+5)
    rig.view.publish(mode="lockdown", occupancy=7, capacity=50, backlog=3, turnstile="locked")
    rig.view.set_health("camera", "ok")
    rig.view.set_health("broker", "down")
    rig.view.recorded(_decision(1, now - 3600, latency_ms=40.0))
    rig.view.recorded(_decision(2, now - 60, decision="admit", reason="admitted", latency_ms=250))
    rig.view.recorded(
        {"type": "passage", "seq": 3, "ts": rfc3339_ms(now - 30), "direction": "entry"}
    )
    rig.view.recorded({"type": "passage", "seq": 4, "ts": rfc3339_ms(now), "direction": "exit"})
    rig.view.recorded(_decision(5, now - 86400))  # yesterday: listed, not in today's charts
    c = rig.client()
    c.login("bob")
    status, s, _ = c.request("GET", "/api/console/state")
    assert status == 200
    g = s["gate"]
    assert (g["mode"], g["occupancy"], g["capacity"], g["backlog"]) == ("lockdown", 7, 50, 3)
    assert g["health"]["camera"] == "ok" and g["health"]["broker"] == "down"
    newest = s["decisions"][0]
    assert newest["seq"] == 5 and len(s["decisions"]) == 3
    admit = s["decisions"][1]
    assert admit["at"] == "2025-12-01 16:59:00"  # venue time, not UTC
    assert (admit["decision"], admit["reason_text"]) == ("admit", "Entry allowed")
    deny = s["decisions"][2]
    assert deny["reason_text"] == "Your status does not allow entry"
    assert (deny["subject"], deny["source"], deny["latency_ms"]) == (
        "0123456789abcdef0123",
        "camera",
        40.0,
    )
    charts = s["charts"]
    assert charts["day"] == "2025-12-01"
    assert charts["entries_per_hour"][16] == 1 and sum(charts["entries_per_hour"]) == 1
    assert sum(charts["latency_counts"]) == 2  # today's two decisions
    assert charts["latency_counts"][0] == 1 and charts["latency_counts"][3] == 1  # 40, 250 ms
    assert s["timezone"] == "Asia/Almaty" and s["simulation"] is False


def test_only_pseudonyms_reach_the_page_whatever_a_record_carries(make) -> None:
    rig = make()
    now = rig.clock.time()
    rig.view.recorded(
        _decision(1, now, subject="870412300415", holder="Aigerim", raw="IIN870412300415")
    )
    c = rig.client()
    c.login("bob")
    _, s, _ = c.request("GET", "/api/console/state")
    row = s["decisions"][0]
    assert row["subject"] is None
    text = json.dumps(s)
    assert "870412300415" not in text and "Aigerim" not in text


def test_the_charts_count_records_made_before_the_console_started(make) -> None:
    view = GateView()
    view.recorded(
        {"type": "passage", "seq": 1, "ts": rfc3339_ms(1_764_590_400.0), "direction": "entry"}
    )
    rig = make(view=view)
    view.recorded(
        {"type": "passage", "seq": 1, "ts": rfc3339_ms(1_764_590_400.0), "direction": "entry"}
    )
    c = rig.client()
    c.login("bob")
    charts = c.request("GET", "/api/console/state")[1]["charts"]
    assert charts["entries_per_hour"][17] == 1  # seen once, though told twice


def _read_event(resp: http.client.HTTPResponse) -> tuple[str, dict[str, Any]]:
    """The next named event of a stream (keepalive comments skipped)."""
    name, data = "message", ""
    while True:
        line = resp.fp.readline().decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line == "" and data:
            return name, json.loads(data)


def _stream(c: Client) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(c.host, c.port, timeout=10)
    cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    conn.request("GET", "/api/console/stream", headers={"Cookie": cookie})
    return conn, conn.getresponse()


def test_the_stream_pushes_the_state_at_each_change_and_ends_with_the_session(make) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    conn, resp = _stream(c)
    try:
        assert resp.status == 200
        assert resp.getheader("Content-Type").startswith("text/event-stream")
        name, first = _read_event(resp)
        assert name == "state" and first["gate"]["mode"] == "normal" and "csrf" not in first
        rig.view.publish(mode="lockdown")
        name, second = _read_event(resp)
        assert second["gate"]["mode"] == "lockdown"
        rig.view.recorded(_decision(9, rig.clock.time()))  # a record alone is news too
        name, third = _read_event(resp)
        assert third["decisions"][0]["seq"] == 9
        rig.clock.advance(SESSION_S)
        rig.view.publish(mode="normal")
        while name == "state":
            name, _ = _read_event(resp)
        assert name == "logout"
    finally:
        conn.close()


def test_a_session_may_hold_a_few_streams_only(make) -> None:
    rig = make()
    c = rig.client()
    c.login("alice")
    opened = [_stream(c) for _ in range(3)]
    try:
        assert all(resp.status == 200 for _, resp in opened)
        status, body, _ = c.request("GET", "/api/console/stream")
        assert (status, body["error"]) == (503, "too_many_streams")
    finally:
        for conn, resp in opened:
            resp.close()
            conn.close()
    # A closed page gives its slot back once its stream next writes (here: the next change).
    deadline = time.monotonic() + 10
    while rig.console._streams and time.monotonic() < deadline:
        rig.view.publish(occupancy=int(time.monotonic() * 1000) % 1000)
        time.sleep(0.05)
    assert rig.console._streams == {}
    conn, resp = _stream(c)
    conn.close()
    assert resp.status == 200


# -- the simulated world ------------------------------------------------------------------


class SimDouble:
    """Stands in for the simulated world at the console's boundary (simulators/ has the real
    one): records what it was told to do."""

    PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16

    def __init__(self) -> None:
        self.done: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def act(self, action: Any) -> tuple[bool, str | None]:
        with self.lock:
            self.done.append(dict(action))
        return True, None

    def camera_png(self) -> bytes | None:
        return self.PNG


@pytest.mark.parametrize(
    "body",
    [
        {"action": "present", "kind": "passport", "status": "yellow"},
        {"action": "present", "kind": "iin", "status": "red", "source": "scanner"},
        {"action": "camera", "plugged": False},
        {"action": "scanner", "plugged": True},
        {"action": "status_service", "mode": "slow"},
        {"action": "fire_alarm", "open": True},
        {"action": "forced_passage"},
        {"action": "leave"},
    ],
)
def test_the_simulated_worlds_controls_reach_the_world(make, body) -> None:
    sim = SimDouble()
    rig = make(sim=sim)
    c = rig.client()
    c.login("alice")
    status, answer, _ = c.request("POST", "/api/sim/world", {**body, "csrf": c.csrf})
    assert status == 200 and answer["ok"] is True
    assert sim.done == [body]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "present", "kind": "barcode", "status": "green"},
        {"action": "present", "kind": "pass"},
        {"action": "present", "kind": "pass", "status": "green", "source": "nose"},
        {"action": "camera", "plugged": 1},
        {"action": "status_service", "mode": "sideways"},
        {"action": "open_the_gate"},
    ],
)
def test_a_malformed_simulated_world_action_is_400(make, body) -> None:
    sim = SimDouble()
    c = make(sim=sim).client()
    c.login("alice")
    status, _, _ = c.request("POST", "/api/sim/world", {**body, "csrf": c.csrf})
    assert status == 400 and sim.done == []


def test_the_simulated_world_wants_an_operator_and_the_token_and_shows_the_camera(make) -> None:
    sim = SimDouble()
    rig = make(sim=sim)
    c = rig.client()
    c.login("bob")
    body = {"action": "leave", "csrf": c.csrf}
    assert c.request("POST", "/api/sim/world", body)[0] == 403
    status, png, resp = c.request("GET", "/api/sim/camera.png")
    assert status == 200 and png == SimDouble.PNG and resp.getheader("Content-Type") == "image/png"
    assert c.request("GET", "/api/console/state")[1]["simulation"] is True
    a = rig.client()
    a.login("alice")
    assert a.request("POST", "/api/sim/world", {"action": "leave"})[0] == 403  # no token
    assert sim.done == []
    assert rig.client().request("GET", "/api/sim/camera.png")[0] == 401


def test_without_a_simulated_world_there_are_no_sim_routes(make) -> None:
    c = make().client()
    c.login("alice")
    assert c.request("POST", "/api/sim/world", {"action": "leave", "csrf": c.csrf})[0] == 404
    assert c.request("GET", "/api/sim/camera.png")[0] == 404


def test_a_last_decision_holder_never_reaches_the_console(make) -> None:
    rig = make()
    rig.view.publish(
        last_decision=LastDecision(
            "admit", "admitted", "green", "online", "camera", 10, 0, "92****51"
        )
    )
    c = rig.client()
    c.login("bob")
    assert "92****51" not in json.dumps(c.request("GET", "/api/console/state")[1])


def test_every_answer_is_json_or_the_pages_own_files(make) -> None:
    c = make().client()
    status, body, resp = c.request("POST", "/api/console/action", raw=b"{")
    assert status == 401 and resp.getheader("Content-Type").startswith("application/json")
    assert re.fullmatch(r"no-store", resp.getheader("Cache-Control"))


# -- through the real gate ----------------------------------------------------------------


def test_real_presentations_through_the_gate_show_pseudonyms_only(
    tmp_path, status_service, population, issuer
) -> None:
    from gate_rig import Rig as GateRig

    gate = GateRig(tmp_path, status_service.url).start()
    view = GateView()
    routes = Routes()
    register(
        routes,
        view=view,
        emit=gate.controller.emit,
        accounts_file=accounts_file(tmp_path),
        timezone="Asia/Almaty",
    )
    server = WebServer(routes, host="127.0.0.1", port=0).start()
    try:
        c = Client(server)
        c.login("alice")
        # The operator tests the relay: the real controller records who did it.
        assert c.act("open_once") == (200, {"ok": True, "error": None, "action": "open_once"})
        [cmd] = gate.wait(lambda e: e["type"] == "command")
        assert (cmd["cmd"], cmd["via"], cmd["account"], cmd["ok"]) == (
            "open_once",
            "console",
            "alice",
            True,
        )
        assert gate.command("reset_occupancy", origin="mqtt") == (True, None)
        mqtt = gate.wait(lambda e: e["type"] == "command" and e["cmd"] == "reset_occupancy")[0]
        assert mqtt["via"] == "mqtt" and "account" not in mqtt
        iin_green = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
        iin_red = next(p for p in population.with_status("red") if p.sub.startswith("iin:"))
        passport = next(p for p in population.people if p.sub.startswith("passport:"))
        pass_holder = [p for p in population.with_status("blue") if p.sub.startswith("iin:")][1]
        pass_text = issuer.mint(pass_holder.sub, "blue")
        passport_text = issuer.mint(passport.sub, passport.st)
        presented = [iin_green.sub[4:], iin_red.sub[4:], pass_text, passport_text]
        for n, text in enumerate(presented, 1):
            gate.present(text)
            gate.decisions(n)
        for event in list(gate.events):
            view.recorded(event)
        _, state, _ = c.request("GET", "/api/console/state")
        conn, resp = _stream(c)
        try:
            _, pushed = _read_event(resp)
        finally:
            conn.close()
        pages = [c.request("GET", p)[1] for p in ("/console", "/static/console.js")]
    finally:
        server.stop()
        gate.stop()
    rows = state["decisions"]
    assert len(rows) == 4
    assert all(re.fullmatch(r"[0-9a-f]{20}", r["subject"] or "") for r in rows)
    assert {r["reason"] for r in rows} >= {"admitted", "status_not_allowed"}
    assert [(r["cmd"], r["via"], r["account"]) for r in state["commands"]] == [
        ("reset_occupancy", "mqtt", None),
        ("open_once", "console", "alice"),
    ]
    shown = json.dumps(state) + json.dumps(pushed) + "".join(p.decode() for p in pages)
    secrets_ = [
        iin_green.sub[4:],
        iin_red.sub[4:],
        pass_holder.sub[4:],
        passport.sub.split(":")[2],
        pass_text,
        passport_text,
        pass_text.split(".")[1][:20],
        "test-venue-secret-0123456789",
        iin_green.name,
        passport.name,
    ]
    for secret in secrets_:
        assert secret not in shown, secret


def test_the_options_come_from_the_configuration(tmp_path) -> None:
    from kiosk.config import load_config
    from kiosk.web.console import console_options
    from support import write_config

    cfg = load_config(write_config(tmp_path, None, policy={"timezone": "Asia/Almaty"}))
    options = console_options(cfg)
    assert options["accounts_file"] == tmp_path / "state" / "console.accounts"
    assert options["timezone"] == "Asia/Almaty"
    console = register(Routes(), view=GateView(), emit=Gate().emit, **options)
    assert console.zone_name == "Asia/Almaty"
    assert console.accounts.path == options["accounts_file"]


def test_the_start_says_who_can_log_in(tmp_path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="kiosk.web.console"):
        register(Routes(), view=GateView(), emit=Gate().emit, accounts_file=tmp_path / "none")
        register(Routes(), view=GateView(), emit=Gate().emit, accounts_file=accounts_file(tmp_path))
    assert (
        f"nobody can log in: {tmp_path / 'none'} does not exist: run `kiosk passwd" in caplog.text
    )
    assert f"console: 2 account(s) in {tmp_path / 'console-accounts'}" in caplog.text
    assert "readable by every user" not in caplog.text
    (tmp_path / "console-accounts").chmod(0o644)
    register(
        Routes(), view=GateView(), emit=Gate().emit, accounts_file=tmp_path / "console-accounts"
    )
    assert "console-accounts is readable by every user: chmod 0640 it" in caplog.text


def test_the_charts_start_from_todays_records_in_the_store(tmp_path, caplog) -> None:
    from zoneinfo import ZoneInfo

    from kiosk.store import EventStore
    from kiosk.web.console_state import today_from_store

    clock = FakeClock(start=1_764_590_400.0)  # 17:00 in Almaty
    zone = ZoneInfo("Asia/Almaty")
    path = tmp_path / "events.sqlite"
    store = EventStore(path, kiosk_id="k1", venue_id="v1", clock=clock)
    clock.advance(-20 * 3600)  # yesterday 21:00 local
    store.record("passage", direction="entry", subject=None)
    clock.advance(20 * 3600 - 1800)  # today 16:30
    store.record("passage", direction="entry", subject=None)
    store.record("decision", decision="admit", reason="admitted", latency_ms=90.0)
    clock.advance(1800)
    store.close()
    events = today_from_store(path, clock=clock, zone=zone)
    assert [e["type"] for e in events] == ["passage", "decision"]
    view = GateView()
    console = register(
        Routes(),
        view=view,
        emit=Gate().emit,
        accounts_file=tmp_path / "a",
        timezone="Asia/Almaty",
        clock=clock,
        history=events,
    )
    charts = console.stats.charts()
    assert charts["entries_per_hour"][16] == 1 and sum(charts["entries_per_hour"]) == 1
    assert sum(charts["latency_counts"]) == 1
    assert today_from_store(tmp_path / "missing.sqlite", clock=clock, zone=zone) == []
    assert "today's charts start empty" in caplog.text


def test_register_takes_what_the_web_app_offers(tmp_path) -> None:
    """kiosk/web/app.py calls ``register`` with the names it offers, those ``register`` names
    only, and leaves the console off when a parameter without a default is not offered."""
    import inspect
    from types import SimpleNamespace

    offered = {
        "web_cfg": SimpleNamespace(tls_cert="/etc/k.crt", tls_key="/etc/k.key"),
        "view": GateView(),
        "emit": Gate().emit,
        "liveness": object(),
        "metrics": object(),
        "accounts_file": str(accounts_file(tmp_path)),
        "session_s": 1800.0,
        "now": lambda: 0.0,
    }
    params = list(inspect.signature(register).parameters.values())[1:]
    required = {p.name for p in params if p.default is inspect.Parameter.empty}
    assert required <= set(offered)
    names = {p.name for p in params}
    console = register(Routes(), **{k: v for k, v in offered.items() if k in names})
    assert console.tls is True and console.sessions.session_s == 1800.0
    assert console.cookie_name == "__Host-kiosk_session"


def test_the_accounts_may_be_given_as_a_path_or_read_already(tmp_path) -> None:
    from kiosk.web.auth import Accounts

    path = accounts_file(tmp_path)
    for given in ({"accounts": str(path)}, {"accounts": Accounts(path)}, {"accounts_file": path}):
        console = register(Routes(), view=GateView(), emit=Gate().emit, **given)
        assert set(console.accounts.all()) == {"alice", "bob"}
    with pytest.raises(KioskError, match="accounts_file"):
        register(Routes(), view=GateView(), emit=Gate().emit)
