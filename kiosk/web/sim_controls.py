"""The console's simulated-world controls (display.md: "In `kiosk sim` the console also shows
the simulated camera's view ... and drives the simulated world"), only in `kiosk sim`.

The console owns the routes and their checks (session, same origin, CSRF, operator role for
``POST /api/sim/world``); the simulation hands in a :class:`SimWorld` that does the acting.
Requests are checked here against the agreed shapes (WEB.md) before the world sees them:

- ``{"action": "present", "kind": "pass|iin|passport", "status": "green|blue|yellow|red"}``
  and optionally ``"source": "camera|scanner"`` (shown to the camera, or scanned)
- ``{"action": "camera" | "scanner", "plugged": bool}``
- ``{"action": "status_service", "mode": "up|down|slow"}``
- ``{"action": "fire_alarm", "open": bool}``
- ``{"action": "forced_passage"}``, ``{"action": "leave"}``
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from kiosk.web.guard import Refusal, guarded, json_answer
from kiosk.web.server import Request, Response, Routes

if TYPE_CHECKING:
    from kiosk.web.console import Console

log = logging.getLogger(__name__)

KINDS = ("pass", "iin", "passport")
STATUSES = ("green", "blue", "yellow", "red")
SERVICE_MODES = ("up", "down", "slow")
SOURCES = ("camera", "scanner")
#: Fields an action may also have: name -> allowed values.
OPTIONAL: dict[str, dict[str, tuple[Any, ...]]] = {"present": {"source": SOURCES}}
#: Each action's other fields: name -> allowed values (bool: True/False).
SHAPES: dict[str, dict[str, tuple[Any, ...]]] = {
    "present": {"kind": KINDS, "status": STATUSES},
    "camera": {"plugged": (True, False)},
    "scanner": {"plugged": (True, False)},
    "status_service": {"mode": SERVICE_MODES},
    "fire_alarm": {"open": (True, False)},
    "forced_passage": {},
    "leave": {},
}


class SimWorld(Protocol):
    """The simulated world as the console drives it (simulators/ implements it)."""

    def act(self, action: Mapping[str, Any]) -> tuple[bool, str | None]:
        """Do one checked action (the shapes above); (ok, error) once done or refused."""
        ...

    def camera_png(self) -> bytes | None:
        """The last frame the decoder saw, the code it found outlined, as PNG (None: none
        yet)."""
        ...


def checked(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The action with exactly its agreed fields, or None when it is not one of them."""
    action = body.get("action")
    if not isinstance(action, str) or action not in SHAPES:
        return None
    out: dict[str, Any] = {"action": action}
    fields = {**SHAPES[action], **{k: v for k, v in OPTIONAL.get(action, {}).items() if k in body}}
    for key, allowed in fields.items():
        value = body.get(key)
        # bool is an int: `1 in (True, False)` is true, so compare types too.
        if not any(value == a and type(value) is type(a) for a in allowed):
            return None
        out[key] = value
    return out


def register(
    routes: Routes,
    *,
    console: Console,
    sim: SimWorld,
) -> None:
    """Add ``POST /api/sim/world`` (operators) and ``GET /api/sim/camera.png`` (everyone
    logged in)."""

    def world(req: Request) -> Response:
        _, account, body = console.post_of(req, act=True)
        action = checked(body)
        if action is None:
            raise Refusal(400, "unknown_sim_action")
        ok, error = sim.act(action)
        log.info(
            "console: %s drove the simulated world from %s: %s: %s",
            account.name,
            req.client,
            " ".join(str(v) for v in action.values()),
            "done" if ok else f"refused ({error})",
        )
        return json_answer(200, {"ok": ok, "error": error, "action": action["action"]})

    def camera(req: Request) -> Response:
        console.session_of(req)
        png = sim.camera_png()
        if png is None:
            return Response(204, b"", "image/png", [("Cache-Control", "no-store")])
        return Response(200, png, "image/png", [("Cache-Control", "no-store")])

    routes.add("POST", "/api/sim/world", guarded(world))
    routes.add("GET", "/api/sim/camera.png", guarded(camera))
