"""The simulated world's web controls and camera view, on a real web server and a real
simulated world (status service, pins, camera feed, scanner pseudo-terminal)."""

from __future__ import annotations

import base64
import json
import os
import select
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.errors import DeviceError
from kiosk.web.server import Request, Response, Routes, WebServer
from simulators.director import Watch
from simulators.run import SIM_CONFIG
from simulators.web import register_sim_routes
from simulators.web.camera_view import FrameTap, render_png
from simulators.web.controls import WorldControls
from simulators.world import World

OPERATOR = "op-session"
VIEWER = "view-session"


def operator_guard(request: Request) -> str | Response:
    """Stands for the console's check: an operator's session cookie and its CSRF token."""
    if request.cookies.get("s") != OPERATOR:
        return Response.text(401 if "s" not in request.cookies else 403, "not allowed")
    if request.header("x-csrf-token") != "tok":
        return Response.text(403, "bad CSRF token")
    return "ops"


def viewer_guard(request: Request) -> str | Response:
    if request.cookies.get("s") not in (OPERATOR, VIEWER):
        return Response.text(401, "log in")
    return "viewer"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    cfg = load_config(SIM_CONFIG)
    w = World(cfg, seed=3)
    yield w
    w.close()


@pytest.fixture(scope="module")
def rig(world: World) -> Iterator[dict[str, Any]]:
    watch = Watch()
    tap = FrameTap(world.camera)
    routes = Routes()
    register_sim_routes(
        routes,
        controls=WorldControls(world, watch=watch, seed=5),
        tap=tap,
        operator=operator_guard,
        viewer=viewer_guard,
    )
    with WebServer(routes, host="127.0.0.1", port=0).start() as server:
        yield {"url": server.url, "tap": tap, "watch": watch}


def call(
    rig: dict[str, Any],
    path: str,
    body: object | None = None,
    *,
    session: str = OPERATOR,
    csrf: str = "tok",
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(rig["url"] + path, data=data, method="POST" if data else "GET")
    req.add_header("Cookie", f"s={session}")
    req.add_header("X-CSRF-Token", csrf)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def act(rig: dict[str, Any], **body: object) -> dict[str, Any]:
    status, _, data = call(rig, "/api/sim/world", body)
    answer: dict[str, Any] = json.loads(data)
    answer["status"] = status
    return answer


def test_the_controls_need_the_operator_check(rig: dict[str, Any], world: World) -> None:
    before = world.turnstile.count("fire_open")
    alarm = {"action": "fire_alarm", "state": "open"}
    assert call(rig, "/api/sim/world", alarm, session=VIEWER)[0] == 403
    assert call(rig, "/api/sim/world", alarm, csrf="x")[0] == 403
    assert call(rig, "/api/sim/camera.png", session="nobody")[0] == 401
    assert world.turnstile.count("fire_open") == before  # refused: nothing happened


def test_fire_alarm_open_and_closed_drive_the_contact(rig: dict[str, Any], world: World) -> None:
    answer = act(rig, action="fire_alarm", state="open")
    assert answer["status"] == 200 and answer["ok"] and "open" in answer["said"]
    assert world.turnstile.events()[-1] == "fire_open"
    act(rig, action="fire_alarm", state="closed")
    assert world.turnstile.events()[-1] == "fire_closed"


def test_people_jump_the_turnstile_and_leave(rig: dict[str, Any], world: World) -> None:
    forced, left = world.turnstile.count("forced"), world.turnstile.count("exit")
    assert act(rig, action="forced_passage")["ok"]
    assert act(rig, action="exit")["ok"]
    assert world.turnstile.count("forced") == forced + 1
    assert world.turnstile.count("exit") == left + 1


def test_camera_and_scanner_unplug_and_replug(rig: dict[str, Any], world: World) -> None:
    act(rig, action="camera", state="unplug")
    with pytest.raises(DeviceError):
        world.camera.open()
    act(rig, action="camera", state="replug")
    world.camera.open()
    act(rig, action="scanner", state="unplug")
    assert not world.scanner.plugged
    assert act(rig, action="scanner", state="unplug")["ok"]  # twice is harmless
    act(rig, action="scanner", state="replug")
    assert world.scanner.plugged


def test_status_service_up_down_and_slow(rig: dict[str, Any], world: World) -> None:
    act(rig, action="service", state="down")
    assert world.service.faults.snapshot()["down"] is True
    answer = act(rig, action="service", state="slow", latency_ms=1500)
    assert "1500 ms" in answer["said"]
    assert world.service.faults.snapshot()["latency_ms"] == 1500
    assert world.service.faults.snapshot()["down"] is False
    act(rig, action="service", state="up")
    assert world.service.faults.snapshot()["latency_ms"] == 0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"action": "dance"}, "action must be one of"),
        ({"action": "present", "status": "purple"}, "status must be one of"),
        ({"action": "present", "kind": "ticket"}, "kind must be one of"),
        ({"action": "camera"}, "state must be one of"),
        ({"action": "service", "state": "slow", "latency_ms": 10**9}, "at most"),
        ({"action": "service", "state": "slow", "latency_ms": "x"}, "whole number"),
        ({"action": "present", "walk": "yes"}, "walk must be true or false"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_requests_get_a_named_reason(rig: dict[str, Any], body: object, words: str) -> None:
    status, _, data = call(rig, "/api/sim/world", body)
    assert status == 400 and words in json.loads(data)["error"]


def test_a_body_that_is_not_json_is_refused(rig: dict[str, Any]) -> None:
    status, _, data = call(rig, "/api/sim/world", raw=b"{nope")
    assert status == 400 and "not JSON" in json.loads(data)["error"]


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\r\n"):
        ready, _, _ = select.select([fd], [], [], 5)
        assert ready, "the scanner sent nothing"
        data += os.read(fd, 4096)
    return data.decode().strip()


@pytest.mark.parametrize(
    ("kind", "status", "check"),
    [
        ("passport_pass", "yellow", lambda t: _claims(t)["sub"].startswith("passport:")),
        ("pass", "blue", lambda t: _claims(t)["st"] == "blue"),
        ("bare_iin", "red", lambda t: t.isdigit() and len(t) == 12),
    ],
)
def test_a_code_typed_into_the_scanner(rig: dict[str, Any], world: World, kind, status, check):
    world.scanner.replug()
    fd = os.open(world.scanner.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        answer = act(rig, action="present", kind=kind, status=status, source="scanner")
        assert answer["ok"], answer
        assert check(_read_line(fd))
    finally:
        os.close(fd)
    # The answer masks the holder: no full number in what the console shows.
    assert "*" in answer["said"] and status in answer["said"]


def test_the_camera_view_outlines_the_code_the_driver_was_given(
    rig: dict[str, Any], world: World
) -> None:
    world.camera.reappear()
    world.camera.open()
    answer = act(rig, action="present", kind="pass", status="green", source="camera")
    assert answer["ok"] and "camera" in answer["said"]
    tap: FrameTap = rig["tap"]
    for _ in range(10):  # what the capture driver's thread does
        tap.read()
    status, headers, png = call(rig, "/api/sim/camera.png", session=VIEWER)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["X-Sim-Codes-Found"] == "1"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (world.camera.height, world.camera.width)
    green = (image[:, :, 1] > 180) & (image[:, :, 0] < 80) & (image[:, :, 2] < 80)
    assert green.sum() > 200  # the outline is drawn


def test_no_frame_yet_gives_a_card_not_an_error() -> None:
    png, found = render_png(None)
    assert found == 0 and png.startswith(b"\x89PNG")


def test_the_page_and_its_files_are_served_to_a_session(rig: dict[str, Any]) -> None:
    status, headers, html = call(rig, "/console/sim", session=VIEWER)
    assert status == 200 and b"/console/sim.js" in html
    assert call(rig, "/console/sim.js", session=VIEWER)[0] == 200
    assert call(rig, "/console/sim.css", session=VIEWER)[0] == 200
    assert call(rig, "/console/sim", session="nobody")[0] == 401
