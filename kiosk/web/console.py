"""The technician console (display.md, The console): ``/console`` and its API.

``register(routes, view=, emit=, accounts_file=, ...)`` adds the page, its assets and the API
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

import contextlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.clock import Clock, SystemClock
from kiosk.errors import KioskError
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
from kiosk.web.guard import Refusal, check_origin, guarded, json_answer, json_body
from kiosk.web.server import EventStream, Request, Response, Routes, sse_frame

log = logging.getLogger(__name__)

ACTIONS = ("open_once", "lockdown", "resume", "reset_occupancy")
COOKIE = "kiosk_session"
SECURE_COOKIE = "__Host-kiosk_session"  # the browser keeps it to this origin, over TLS only
DEFAULT_SESSION_S = 3600.0  # [web] session_s's default
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
            raise Refusal(401, "login")
        account = self.accounts.get(session.name)
        if account is None:  # removed since: its sessions end
            self.sessions.end_for(session.name)
            raise Refusal(401, "login")
        return session, account

    def check_origin(self, req: Request) -> None:
        """Refuse a request another site's page made (Origin or Referer not ours)."""
        check_origin(req, tls=self.tls, allowed=self.allowed_origins)

    def body_of(self, req: Request) -> dict[str, Any]:
        """The request's JSON object (400 when too large, malformed or not an object)."""
        return json_body(req, MAX_JSON_BYTES)

    def post_of(self, req: Request, *, act: bool) -> tuple[Session, Account, dict[str, Any]]:
        """A state-changing request: session, same origin, CSRF token, and the role."""
        session, account = self.session_of(req)
        try:
            self.check_origin(req)
            body = self.body_of(req)
            offered = body.get("csrf", req.header("x-csrf-token") or None)
            if not csrf_ok(session, offered):
                raise Refusal(403, "csrf")
        except Refusal as refused:
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
            raise Refusal(403, "viewer")
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
            raise Refusal(400, "name_and_password")
        if len(password) > MAX_PASSWORD:
            raise Refusal(400, "name_and_password")
        keys = (f"addr:{req.client}", f"account:{name}")
        wait = self.limiter.locked_for(*keys)
        if wait > 0:
            retry = str(math.ceil(wait))
            raise Refusal(429, "locked", [("Retry-After", retry)])
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
            raise Refusal(401, "bad_login")
        self.limiter.succeeded(*keys)
        session = self.sessions.create(account.name)
        log.info("console: %s (%s) logged in from %s", account.name, account.role, req.client)
        return json_answer(
            200,
            {"ok": True, "csrf": session.csrf, "account": _account(account)},
            [("Set-Cookie", self._cookie(session.token, self.sessions.session_s))],
        )

    def logout(self, req: Request) -> Response:
        """End the session."""
        session, account, _ = self.post_of(req, act=False)
        self.sessions.end(session.token)
        log.info("console: %s logged out from %s", account.name, req.client)
        return json_answer(200, {"ok": True}, [("Set-Cookie", self._cookie("", 0))])

    def state(self, req: Request) -> Response:
        """The console's state now, with the session's CSRF token."""
        session, account = self.session_of(req)
        body = self._state()
        body.update(csrf=session.csrf, account=_account(account))
        return json_answer(200, body)

    def stream(self, req: Request) -> EventStream | Response:
        """Server push: a ``state`` event at every change of the gate or a new record."""
        session, _ = self.session_of(req)
        with self._streams_lock:
            mine = self._streams.get(session.token, 0)
            if sum(self._streams.values()) >= MAX_STREAMS or mine >= MAX_STREAMS_PER_SESSION:
                raise Refusal(503, "too_many_streams")
            self._streams[session.token] = mine + 1
        return EventStream(_Slotted(self._frames(req, session.token), self._release(session.token)))

    def action(self, req: Request) -> Response:
        """An operator's action, handed to the controller; the answer says how it ended."""
        _, account, body = self.post_of(req, act=True)
        action = body.get("action")
        if action not in ACTIONS:
            raise Refusal(400, "unknown_action")
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
        return json_answer(status, {"ok": ok, "error": error, "action": action})

    # -- helpers ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return console_state(
            self.view, self.stats, simulation=self.sim is not None, zone_name=self.zone_name
        )

    def _frames(self, req: Request, token: str) -> Iterator[bytes]:
        seen = -1
        idle = 0.0
        while not req.stopping.is_set():
            session = self.sessions.get(token)
            if session is None or self.accounts.get(session.name) is None:  # the page logs in
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


def _static(name: str) -> Callable[[Request], Response]:
    return lambda req: static_response(name)


def static_response(name: str) -> Response:
    """One of the console's files from the package (kiosk/web/static)."""
    data = resources.files("kiosk.web").joinpath("static", name).read_bytes()
    return Response(200, data, STATIC_FILES[name], [("Cache-Control", "no-cache")])


def console_options(cfg: Any) -> dict[str, Any]:
    """``register``'s options from a configuration: the accounts file (``[web]
    accounts_file``), the login's length (``[web] session_s``) when the section has it, and
    the venue's time zone (``[policy] timezone``)."""
    from kiosk.web.passwd import accounts_file_of

    options: dict[str, Any] = {
        "accounts_file": accounts_file_of(cfg),
        "timezone": cfg.policy_section.timezone,
    }
    web = getattr(cfg, "web", None)
    if web is not None:
        options["web_cfg"] = web
        options["session_s"] = float(web.session_s)
    return options


def register(
    routes: Routes,
    *,
    view: GateView,
    emit: Callable[[Any], None],
    accounts_file: str | os.PathLike[str] | None = None,
    accounts: Accounts | str | os.PathLike[str] | None = None,
    session_s: float = DEFAULT_SESSION_S,
    timezone: str = "UTC",
    web_cfg: Any = None,
    tls: bool | None = None,
    clock: Clock | None = None,
    sim: sim_controls.SimWorld | None = None,
    allowed_origins: Iterable[str] = (),
    history: Iterable[Mapping[str, Any]] = (),
) -> Console:
    """Add the console's routes; returns the Console (tests and the simulation use it).

    - ``accounts_file``: the accounts file (``[web] accounts_file``); ``accounts``: the
      same, or an :class:`Accounts` read already;
    - ``session_s``: how long a login lasts (``[web] session_s``);
    - ``timezone``: the venue's (``[policy] timezone``): decisions' times, today's charts;
    - ``web_cfg``: the ``[web]`` section, whose certificate means HTTPS (``tls`` says so
      directly): Secure cookies;
    - ``sim``: the simulated world, which adds its controls and camera view;
    - ``history``: today's records made before this start, for the charts
      (``console_state.today_from_store(store path, ...)``).

    :func:`console_options` gives the configuration's.
    """
    if accounts is None:
        if accounts_file is None:
            raise KioskError("the console needs its accounts file ([web] accounts_file)")
        accounts = Accounts(accounts_file)
    elif not isinstance(accounts, Accounts):
        accounts = Accounts(accounts)
    if tls is None:
        tls = bool(web_cfg is not None and web_cfg.tls_cert and web_cfg.tls_key)
    clock = clock or SystemClock()
    zone = ZoneInfo(timezone)
    stats = ConsoleStats(zone=zone, clock=clock)
    console = Console(
        view=view,
        emit=emit,
        accounts=accounts,
        sessions=Sessions(session_s=session_s, monotonic=clock.monotonic),
        limiter=LoginLimiter(monotonic=clock.monotonic),
        stats=stats,
        zone_name=timezone,
        tls=tls,
        sim=sim,
        allowed_origins=frozenset(allowed_origins),
    )
    known = console.accounts.all()
    if known:
        log.info("console: %d account(s) in %s", len(known), console.accounts.path)
        with contextlib.suppress(OSError):
            if console.accounts.path.stat().st_mode & 0o007:  # hashes can be attacked offline
                log.warning(
                    "console: %s is readable by every user: chmod 0640 it", console.accounts.path
                )
    else:  # say it at start: otherwise the first sign is a technician who cannot log in
        log.warning("console: nobody can log in: %s", console.accounts.problem)
    view.subscribe(stats)
    stats.seed(history)
    stats.seed(view.recent(200))
    g = guarded
    routes.add("GET", "/console", g(console.page))
    for name in STATIC_FILES:
        routes.add("GET", f"/static/{name}", g(_static(name)))
    routes.add("POST", "/console/login", g(console.login))
    routes.add("POST", "/console/logout", g(console.logout))
    routes.add("GET", "/api/console/state", g(console.state))
    routes.add("GET", "/api/console/stream", g(console.stream))
    routes.add("POST", "/api/console/action", g(console.action))
    if sim is not None:
        sim_controls.register(routes, console=console, sim=sim)
    return console
