"""Checks and answers shared by the console's routes (kiosk/web/console.py and
kiosk/web/sim_controls.py): a refusal is raised as :class:`Refusal` anywhere in a handler and
answered as a small JSON object (``{"ok": false, "error": "<name>"}``) by :func:`guarded`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from kiosk.web.server import EventStream, Request, Response


class Refusal(Exception):
    """A request refused: the HTTP status and the error's name (and extra headers)."""

    def __init__(self, status: int, error: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(error)
        self.status, self.error, self.headers = status, error, headers or []


def json_answer(
    status: int, body: Mapping[str, Any], headers: list[tuple[str, str]] | None = None
) -> Response:
    """A JSON answer nobody caches (it may carry a CSRF token or the gate's state)."""
    return Response(
        status,
        json.dumps(body, ensure_ascii=False).encode(),
        "application/json; charset=utf-8",
        [("Cache-Control", "no-store"), *(headers or [])],
    )


def guarded(
    handler: Callable[[Request], Response | EventStream],
) -> Callable[[Request], Response | EventStream]:
    """``handler`` with its refusals answered as JSON."""

    def serve(req: Request) -> Response | EventStream:
        try:
            return handler(req)
        except Refusal as refused:
            body = {"ok": False, "error": refused.error}
            return json_answer(refused.status, body, refused.headers)

    return serve


def check_origin(req: Request, *, tls: bool, allowed: Iterable[str] = ()) -> None:
    """Refuse (403 ``origin``) a request whose Origin or Referer, when sent, is not the
    kiosk's own origin (the Host it was asked by) or one of ``allowed``."""
    host = req.header("host")
    scheme = "https" if tls else "http"
    ours = {f"{scheme}://{host}"} if host else set()
    ours |= set(allowed)
    origin = req.header("origin")
    if origin and origin not in ours:
        raise Refusal(403, "origin")
    referer = req.header("referer")
    if referer:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}" not in ours:
            raise Refusal(403, "origin")


def json_body(req: Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object; 400 ``too_large`` or ``malformed_json`` otherwise."""
    if len(req.body) > max_bytes:
        raise Refusal(400, "too_large")
    try:
        body = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refusal(400, "malformed_json") from exc
    if not isinstance(body, dict):
        raise Refusal(400, "malformed_json")
    return body
