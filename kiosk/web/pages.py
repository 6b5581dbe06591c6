"""The display's HTTP side: the page, its files, the current screen and its server push.

``GET /`` is the display page, ``GET /static/<file>`` the kiosk's own scripts, styles and
icons (package data: nothing is loaded from elsewhere), ``GET /api/display`` the current
screen as JSON, ``GET /api/display/stream`` the same as Server-Sent Events (event ``screen``):
a new frame whenever the screen changes, a ``ping`` event each second in between (a comment
would keep the connection open too, but a page cannot see comments, and the page must know
within 3 s that it has lost the kiosk), ended when the server stops. ``GET
/api/display/lost`` is the out-of-order screen in the configured languages, which the page
keeps to show by itself when the kiosk is gone.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources

from kiosk.gate.view import GateView
from kiosk.web.display import Screen, Screens
from kiosk.web.server import EventStream, Request, Response, Routes, sse_frame

PING_S = 1.0  # the page's 3 s "lost the kiosk" timer hears from a live kiosk this often
WAIT_SLICE_S = 0.5  # a stream notices the server stopping at least this often
RETRY_MS = 1000  # EventSource reconnects this soon after the kiosk comes back
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@cache
def static_file(name: str) -> bytes | None:
    """A file of kiosk/web/static by its plain name (no folders), or None."""
    if _NAME.fullmatch(name) is None or ".." in name:
        return None
    item = resources.files("kiosk.web").joinpath("static", name)
    try:
        return item.read_bytes() if item.is_file() else None
    except OSError:
        return None


def _asset(name: str) -> Response:
    body = static_file(name)
    kind = TYPES.get(name[name.rfind(".") :] if "." in name else "")
    if body is None or kind is None:
        return Response.text(404, "not found")
    return Response(200, body, kind, [("Cache-Control", "no-cache")])


def screen_json(screen: Screen) -> str:
    """One line of JSON (SSE data carries no raw newline)."""
    return json.dumps(screen, ensure_ascii=False, separators=(",", ":"))


def register_display(
    routes: Routes, *, view: GateView, screens: Screens, now: Callable[[], float]
) -> None:
    """Mount the display's paths on ``routes``."""

    def page(request: Request) -> Response:
        return _asset("display.html")

    def asset(request: Request) -> Response:
        return _asset(request.path[len("/static/") :])

    def current(request: Request) -> Response:
        screen = screens.screen(view.snapshot(), now())
        body = screen_json(screen).encode()
        return Response(200, body, "application/json", [("Cache-Control", "no-store")])

    def lost(request: Request) -> Response:
        body = screen_json(screens.lost()).encode()
        return Response(200, body, "application/json", [("Cache-Control", "no-store")])

    def stream(request: Request) -> EventStream:
        return EventStream(_frames(request, view=view, screens=screens, now=now))

    routes.add("GET", "/", page)
    routes.add("GET", "/static/", asset, prefix=True)
    routes.add("GET", "/api/display", current)
    routes.add("GET", "/api/display/lost", lost)
    routes.add("GET", "/api/display/stream", stream)


def _frames(
    request: Request, *, view: GateView, screens: Screens, now: Callable[[], float]
) -> Iterator[bytes]:
    """The stream of one page: the screen now, then each change, pings in between."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    sent: str | None = None
    quiet_since = time.monotonic()
    snap = view.snapshot()
    while not request.stopping.is_set():
        at = now()
        data = screen_json(screens.screen(snap, at))
        if data != sent:
            sent = data
            quiet_since = time.monotonic()
            yield sse_frame(data, event="screen", id_=snap.version)
        elif time.monotonic() - quiet_since >= PING_S:
            quiet_since = time.monotonic()
            yield sse_frame(str(snap.version), event="ping")
        timeout = WAIT_SLICE_S
        due = screens.next_change(snap, at)
        if due is not None:
            timeout = min(timeout, due + 0.005)  # just past it: the screen has changed then
        snap = view.wait_for_change(snap.version, timeout)
