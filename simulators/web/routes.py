"""The simulation's extra routes on the kiosk's own web server (WEB.md, display.md).

- ``POST /api/sim/world``: a JSON object ``{"action": ..., ...}`` (simulators/web/controls.py
  lists the actions), for an operator with a valid session and CSRF token, exactly as the
  console's own actions.
- ``GET /api/sim/camera.png``: the simulated camera's view (the frame the capture driver read
  last, the code found in it outlined), for any logged-in account.
- ``GET /console/sim`` and its two static files: a small page with the view and the controls.

Registered only by `kiosk sim`; `kiosk run` never serves them.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Protocol

from kiosk.web.server import Request, Response, Routes
from simulators.web.camera_view import FrameTap, render_png
from simulators.web.controls import ControlError, WorldControls

PAGE = "/console/sim"
_STATIC = {
    "/console/sim": ("sim.html", "text/html; charset=utf-8"),
    "/console/sim.js": ("sim.js", "text/javascript; charset=utf-8"),
    "/console/sim.css": ("sim.css", "text/css; charset=utf-8"),
}
_NO_STORE = [("Cache-Control", "no-store")]


class Guard(Protocol):
    """The console's access check: the account's name when ``request`` may go on, else the
    refusal to send (401 without a session, 403 for a viewer or a bad CSRF token)."""

    def __call__(self, request: Request) -> str | Response: ...


def register_sim_routes(
    routes: Routes,
    *,
    controls: WorldControls,
    tap: FrameTap | None,
    operator: Guard,
    viewer: Guard,
) -> None:
    """Add the simulated world's routes. ``operator`` guards the controls (a session with the
    operator role and its CSRF token), ``viewer`` the camera view and the page."""

    def world(request: Request) -> Response:
        who = operator(request)
        if isinstance(who, Response):
            return who
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"ok": False, "error": "the body is not JSON"})
        if not isinstance(body, dict):
            return _json(400, {"ok": False, "error": "the body must be a JSON object"})
        try:
            return _json(200, controls.act(body, by=who))
        except ControlError as exc:
            return _json(400, {"ok": False, "action": body.get("action"), "error": str(exc)})

    def camera(request: Request) -> Response:
        who = viewer(request)
        if isinstance(who, Response):
            return who
        frame, age = tap.last() if tap is not None else (None, None)
        png, found = render_png(frame, age_s=age)
        headers = [*_NO_STORE, ("X-Sim-Codes-Found", str(found))]
        return Response(200, png, "image/png", headers)

    def static(request: Request) -> Response:
        who = viewer(request)
        if isinstance(who, Response):
            return who
        name, kind = _STATIC[request.path]
        data = resources.files("simulators.web").joinpath("static", name).read_bytes()
        return Response(200, data, kind, list(_NO_STORE))

    routes.add("POST", "/api/sim/world", world)
    routes.add("GET", "/api/sim/camera.png", camera)
    for path in _STATIC:
        routes.add("GET", path, static)


def _json(status: int, obj: dict[str, Any]) -> Response:
    return Response(status, json.dumps(obj).encode(), "application/json", list(_NO_STORE))
