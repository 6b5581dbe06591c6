"""The technician console (display.md, The console): ``/console`` and its API.

``register(routes, view=, emit=, accounts=, ...)`` adds the page, its assets and the API
(WEB.md): ``POST /console/login`` and ``/console/logout``, ``GET /api/console/state``,
``GET /api/console/stream`` (Server-Sent Events, event ``state``) and ``POST
/api/console/action``; with a simulated world also ``POST /api/sim/world`` and ``GET
/api/sim/camera.png``.

Every API answer needs a session (kiosk/web/auth.py); every POST also needs the session's
CSRF token (JSON ``csrf`` or the ``X-CSRF-Token`` header) and, when the browser sends an
Origin or a Referer, the kiosk's own origin. Viewers see everything; operators may also act.
An action is handed to the controller as a Command (origin ``console``, the account's name)
and the answer says how it ended. Each action, login and refusal is one journal line naming
the account and the client's address, never a password.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from kiosk.clock import Clock, SystemClock
from kiosk.events import Command  # the one import of the controller's inputs (WEB.md)
from kiosk.gate.view import GateView
from kiosk.web import sim_controls
from kiosk.web.auth import (
    FAILURES_ALLOWED,
    MAX_PASSWORD,
    Account,
    Accounts,
    LoginLimiter,
    Session,
    Sessions,
    authenticate,
    csrf_ok,
)
from kiosk.web.console_state import ConsoleStats, console_state
from kiosk.web.server import EventStream, Request, Response, Routes, sse_frame

log = logging.getLogger(__name__)

ACTIONS = ("open_once", "lockdown", "resume", "reset_occupancy")
COOKIE = "kiosk_session"
SECURE_COOKIE = "__Host-kiosk_session"  # the browser keeps it to this origin, over TLS only
DEFAULT_SESSION_S = 8 * 3600.0
#: Console requests are small; anything larger is not the page's.
MAX_JSON_BYTES = 4096
ACTION_WAIT_S = 5.0
KEEPALIVE_S = 15.0
MAX_STREAMS = 8
MAX_STREAMS_PER_SESSION = 3
STATIC_FILES = {
    "console.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console-logo.svg": "image/svg+xml",
}


class EmitCommand(Protocol):
    """The controller's input: ``emit`` (kiosk.events.Emit) takes a Command among others."""

    def __call__(self, event: Command, /) -> None: ...


class _Refusal(Exception):
    def __init__(self, status: int, error: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(error)
        self.status, self.error, self.headers = status, error, headers or []


def _json(status: int, body: Mapping[str, Any], headers: list[tuple[str, str]] | None = None):
    return Response(
        status,
        json.dumps(body, ensure_ascii=False).encode(),
        "application/json; charset=utf-8",
        [("Cache-Control", "no-store"), *(headers or [])],
    )


@dataclass
class Console:
    """The console's routes and what they share (sessions, limiter, charts)."""

    view: GateView
    emit: Callable[[Any], None]
    accounts: Accounts
    sessions: Sessions
    limiter: LoginLimiter
    stats: ConsoleStats
    zone_name: str
    tls: bool = False
    sim: sim_controls.SimWorld | None = None
    allowed_origins: frozenset[str] = frozenset()
    action_wait_s: float = ACTION_WAIT_S
    _streams: dict[str, int] = field(default_factory=dict)
    _streams_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cookie_name(self) -> str:
        """``__Host-`` over TLS (Secure, this origin only), a plain name without."""
        return SECURE_COOKIE if self.tls else COOKIE

    # -- the checks every API request passes ------------------------------------------

    def session_of(self, req: Request) -> tuple[Session, Account]:
        """The request's live session and its account as the accounts file says now."""
        token = req.cookies.get(self.cookie_name)
        session = self.sessions.get(token)
        if session is None:
            raise _Refusal(401, "login")
        account = self.accounts.get(session.name)
        if account is None:  # removed since: its sessions end
            self.sessions.end_for(session.name)
            raise _Refusal(401, "login")
        return session, account

    def check_origin(self, req: Request) -> None:
        """Refuse a request another site's page made (Origin or Referer not ours)."""
        host = req.header("host")
        scheme = "https" if self.tls else "http"
        ours = {f"{scheme}://{host}"} if host else set()
        ours |= self.allowed_origins
        origin = req.header("origin")
        if origin and origin not in ours:
            raise _Refusal(403, "origin")
        referer = req.header("referer")
        if referer:
            parts = urlsplit(referer)
            if f"{parts.scheme}://{parts.netloc}" not in ours:
                raise _Refusal(403, "origin")

    def body_of(self, req: Request) -> dict[str, Any]:
        """The request's JSON object (400 when too large, malformed or not an object)."""
        if len(req.body) > MAX_JSON_BYTES:
            raise _Refusal(400, "too_large")
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Refusal(400, "malformed_json") from exc
        if not isinstance(body, dict):
            raise _Refusal(400, "malformed_json")
        return body

    def post_of(self, req: Request, *, act: bool) -> tuple[Session, Account, dict[str, Any]]:
        """A state-changing request: session, same origin, CSRF token, and the role."""
        session, account = self.session_of(req)
        try:
            self.check_origin(req)
            body = self.body_of(req)
            offered = body.get("csrf", req.header("x-csrf-token") or None)
            if not csrf_ok(session, offered):
                raise _Refusal(403, "csrf")
        except _Refusal as refused:
            if refused.status == 403:
                log.warning(
                    "console: %s %s by %s from %s refused (%s)",
                    req.method,
                    req.path,
                    account.name,
                    req.client,
                    "not from the console's own page" if refused.error == "origin" else "no CSRF",
                )
            raise
        if act and not account.may_act:
            log.warning(
                "console: %s (viewer) from %s may not act (%s)",
                account.name,
                req.client,
                _word(body.get("action")),
            )
            raise _Refusal(403, "viewer")
        return session, account, body

    # -- handlers ---------------------------------------------------------------------

    def page(self, req: Request) -> Response:
        """The console's page; it shows the login form itself when not logged in."""
        return static_response("console.html")

    def login(self, req: Request) -> Response:
        """Check a name and password; start a session."""
        self.check_origin(req)
        body = self.body_of(req)
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or len(name) > 64:
            raise _Refusal(400, "name_and_password")
        if len(password) > MAX_PASSWORD:
            raise _Refusal(400, "name_and_password")
        keys = (f"addr:{req.client}", f"account:{name}")
        wait = self.limiter.locked_for(*keys)
        if wait > 0:
            retry = str(math.ceil(wait))
            raise _Refusal(429, "locked", [("Retry-After", retry)])
        account = authenticate(self.accounts, name, password)
        if account is None:
            failures = self.limiter.failed(*keys)
            known = self.accounts.get(name) is not None
            # A name that is no account may be a password typed in the wrong field: not logged.
            who = f"account {name}" if known else "an unknown account name"
            locked = self.limiter.locked_for(*keys)
            log.warning(
                "console: login refused for %s from %s (%d failed%s)",
                who,
                req.client,
                failures,
                f"; locked for {math.ceil(locked)} s" if failures >= FAILURES_ALLOWED else "",
            )
            problem = self.accounts.problem
            if problem:
                log.warning("console: nobody can log in: %s", problem)
            raise _Refusal(401, "bad_login")
        self.limiter.succeeded(*keys)
        session = self.sessions.create(account.name)
        log.info("console: %s (%s) logged in from %s", account.name, account.role, req.client)
        return _json(
            200,
            {"ok": True, "csrf": session.csrf, "account": _account(account)},
            [("Set-Cookie", self._cookie(session.token, self.sessions.session_s))],
        )

    def logout(self, req: Request) -> Response:
        """End the session."""
        session, account, _ = self.post_of(req, act=False)
        self.sessions.end(session.token)
        log.info("console: %s logged out from %s", account.name, req.client)
        return _json(200, {"ok": True}, [("Set-Cookie", self._cookie("", 0))])

    def state(self, req: Request) -> Response:
        """The console's state now, with the session's CSRF token."""
        session, account = self.session_of(req)
        body = self._state()
        body.update(csrf=session.csrf, account=_account(account))
        return _json(200, body)

    def stream(self, req: Request) -> EventStream | Response:
        """Server push: a ``state`` event at every change of the gate or a new record."""
        session, _ = self.session_of(req)
        with self._streams_lock:
            mine = self._streams.get(session.token, 0)
            if sum(self._streams.values()) >= MAX_STREAMS or mine >= MAX_STREAMS_PER_SESSION:
                raise _Refusal(503, "too_many_streams")
            self._streams[session.token] = mine + 1
        return EventStream(_Slotted(self._frames(req, session.token), self._release(session.token)))

    def action(self, req: Request) -> Response:
        """An operator's action, handed to the controller; the answer says how it ended."""
        _, account, body = self.post_of(req, act=True)
        action = body.get("action")
        if action not in ACTIONS:
            raise _Refusal(400, "unknown_action")
        ok, error = self._command(action, account.name)
        log.log(
            logging.INFO if ok else logging.WARNING,
            "console: %s asked %s from %s: %s",
            account.name,
            action,
            req.client,
            "done" if ok else f"refused ({error})",
        )
        status = 504 if error == "no_answer" else 200
        return _json(status, {"ok": ok, "error": error, "action": action})

    # -- helpers ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return console_state(
            self.view, self.stats, simulation=self.sim is not None, zone_name=self.zone_name
        )

    def _frames(self, req: Request, token: str) -> Iterator[bytes]:
        seen = -1
        idle = 0.0
        while not req.stopping.is_set():
            if self.sessions.get(token) is None:  # logged out or expired: the page logs in
                yield sse_frame(json.dumps({"login": True}), event="logout")
                return
            now = self.stats.changes
            if now != seen:
                seen = now
                idle = 0.0
                yield sse_frame(json.dumps(self._state(), ensure_ascii=False), event="state")
                continue
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield b": keepalive\n\n"
            self.stats.wait(seen, 1.0)  # wakes at once on a change; 1 s to see a stop
            idle += 1.0

    def _release(self, token: str) -> Callable[[], None]:
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._streams_lock:
                left = self._streams.get(token, 1) - 1
                if left > 0:
                    self._streams[token] = left
                else:
                    self._streams.pop(token, None)

        return release

    def _command(self, cmd: str, account: str) -> tuple[bool, str | None]:
        finished = threading.Event()
        result: list[Any] = [False, "no_answer"]

        def done(ok: bool, error: str | None) -> None:  # on the controller's thread
            result[:] = [ok, error]
            finished.set()

        try:
            self.emit(Command(cmd, origin="console", account=account, done=done))
        except Exception as exc:  # the controller refused the input (stopping): say so
            log.error("console: %s could not be handed to the gate: %s", cmd, exc)
            return False, "gate_unavailable"
        finished.wait(self.action_wait_s)
        return bool(result[0]), result[1]

    def _cookie(self, value: str, max_age: float) -> str:
        parts = [
            f"{self.cookie_name}={value}",
            "Path=/",
            f"Max-Age={int(max_age)}",
            "HttpOnly",
            "SameSite=Strict",
        ]
        if self.tls:
            parts.append("Secure")
        return "; ".join(parts)

    def guarded(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """A handler answering refusals (_Refusal) as JSON, with the console's headers."""

        def serve(req: Request) -> Any:
            try:
                return handler(req)
            except _Refusal as refused:
                return _json(refused.status, {"ok": False, "error": refused.error}, refused.headers)

        return serve


class _Slotted:
    """A stream's frames that give back their stream slot when closed or ended (the server
    closes every stream, even one that never started)."""

    def __init__(self, frames: Iterator[bytes], release: Callable[[], None]) -> None:
        self._frames, self._release = frames, release

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._frames)
        except BaseException:
            self._release()
            raise

    def close(self) -> None:
        """End the stream (the server calls this when the page went or the server stops)."""
        try:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()
        finally:
            self._release()


def _account(account: Account) -> dict[str, Any]:
    return {"name": account.name, "role": account.role, "may_act": account.may_act}


def _word(value: object) -> str:
    return value if isinstance(value, str) and value.isidentifier() and len(value) < 40 else "?"


def static_response(name: str) -> Response:
    """One of the console's files from the package (kiosk/web/static)."""
    data = resources.files("kiosk.web").joinpath("static", name).read_bytes()
    return Response(200, data, STATIC_FILES[name], [("Cache-Control", "no-cache")])


def register(
    routes: Routes,
    *,
    view: GateView,
    emit: Callable[[Any], None],
    accounts: Accounts | str | os.PathLike[str],
    session_s: float = DEFAULT_SESSION_S,
    timezone: str = "UTC",
    tls: bool = False,
    clock: Clock | None = None,
    sim: sim_controls.SimWorld | None = None,
    allowed_origins: Iterable[str] = (),
    history: Iterable[Mapping[str, Any]] = (),
) -> Console:
    """Add the console's routes; returns the Console (tests and the simulation use it).

    ``accounts``: the accounts file (``[web] accounts_file``) or an :class:`Accounts`;
    ``session_s``: how long a login lasts; ``timezone``: the venue's ([policy] timezone);
    ``tls``: the server speaks HTTPS (Secure cookies); ``sim``: the simulated world, which
    adds its controls and camera view; ``history``: records of today made before this
    start (from the event store), for the charts.
    """
    clock = clock or SystemClock()
    zone = ZoneInfo(timezone)
    stats = ConsoleStats(zone=zone, clock=clock)
    console = Console(
        view=view,
        emit=emit,
        accounts=accounts if isinstance(accounts, Accounts) else Accounts(accounts),
        sessions=Sessions(session_s=session_s, monotonic=clock.monotonic),
        limiter=LoginLimiter(monotonic=clock.monotonic),
        stats=stats,
        zone_name=timezone,
        tls=tls,
        sim=sim,
        allowed_origins=frozenset(allowed_origins),
    )
    view.subscribe(stats)
    stats.seed(history)
    stats.seed(view.recent(200))
    g = console.guarded
    routes.add("GET", "/console", g(console.page))
    for name in STATIC_FILES:
        routes.add("GET", f"/static/{name}", g(lambda req, n=name: static_response(n)))
    routes.add("POST", "/console/login", g(console.login))
    routes.add("POST", "/console/logout", g(console.logout))
    routes.add("GET", "/api/console/state", g(console.state))
    routes.add("GET", "/api/console/stream", g(console.stream))
    routes.add("POST", "/api/console/action", g(console.action))
    if sim is not None:
        sim_controls.register(routes, console=console, sim=sim, refusal=_Refusal, answer=_json)
    return console
