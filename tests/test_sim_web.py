"""The simulated world as the console drives it, on a real simulated world (status service,
pins, camera feed, scanner pseudo-terminal): each action acts at the world's boundary."""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.errors import DeviceError
from simulators.director import Watch
from simulators.run import SIM_CONFIG
from simulators.web.camera_view import FrameTap, render_png
from simulators.web.controls import WorldControls
from simulators.web.serve import create_account, parse_listen
from simulators.world import World

# A simulated person's thread failing is a failure here, not a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    w = World(load_config(SIM_CONFIG), seed=3)
    yield w
    w.close()


@pytest.fixture(scope="module")
def controls(world: World) -> WorldControls:
    return WorldControls(world, watch=Watch(), tap=FrameTap(world.camera), seed=5)


def test_fire_alarm_open_and_closed_drive_the_contact(controls, world: World) -> None:
    assert controls.act({"action": "fire_alarm", "open": True}) == (True, None)
    assert world.turnstile.events()[-1] == "fire_open"
    assert controls.act({"action": "fire_alarm", "open": False}) == (True, None)
    assert world.turnstile.events()[-1] == "fire_closed"


def test_people_jump_the_turnstile_and_leave(controls, world: World) -> None:
    forced, left = world.turnstile.count("forced"), world.turnstile.count("exit")
    assert controls.do({"action": "forced_passage"}) == "someone jumped the turnstile"
    assert controls.act({"action": "leave"}) == (True, None)
    assert world.turnstile.count("forced") == forced + 1
    assert world.turnstile.count("exit") == left + 1


def test_camera_and_scanner_unplug_and_replug(controls, world: World) -> None:
    controls.do({"action": "camera", "plugged": False})
    with pytest.raises(DeviceError):
        world.camera.open()
    controls.do({"action": "camera", "plugged": True})
    world.camera.open()
    controls.do({"action": "scanner", "plugged": False})
    assert not world.scanner.plugged
    assert controls.act({"action": "scanner", "plugged": False}) == (True, None)  # harmless
    ok, why = controls.act({"action": "present", "kind": "iin", "source": "scanner"})
    assert not ok and why  # nothing to type into: said, not raised
    controls.do({"action": "scanner", "plugged": True})
    assert world.scanner.plugged


def test_status_service_up_down_and_slow(controls, world: World) -> None:
    faults = world.service.faults
    controls.do({"action": "status_service", "mode": "down"})
    assert faults.snapshot()["down"] is True
    said = controls.do({"action": "status_service", "mode": "slow", "latency_ms": 1500})
    assert "1500 ms" in said
    assert faults.snapshot()["latency_ms"] == 1500 and faults.snapshot()["down"] is False
    controls.do({"action": "status_service", "mode": "up"})
    assert faults.snapshot()["latency_ms"] == 0 and faults.snapshot()["down"] is False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"action": "dance"}, "action must be one of"),
        ({"action": "present", "status": "purple"}, "status must be one of"),
        ({"action": "present", "kind": "ticket"}, "kind must be one of"),
        ({"action": "present", "source": "nose"}, "source must be one of"),
        ({"action": "camera"}, "plugged must be true or false"),
        ({"action": "fire_alarm", "open": 1}, "open must be true or false"),
        ({"action": "status_service", "mode": "slow", "latency_ms": 10**9}, "at most"),
        ({"action": "status_service", "mode": "slow", "latency_ms": "x"}, "whole number"),
        ({"action": "present", "walk": "yes"}, "walk must be true or false"),
    ],
)
def test_bad_actions_get_a_named_reason(controls, body: dict[str, Any], words: str) -> None:
    ok, why = controls.act(body)
    assert not ok and why is not None and words in why


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
        ("passport", "yellow", lambda t: _claims(t)["sub"].startswith("passport:")),
        ("pass", "blue", lambda t: _claims(t)["st"] == "blue"),
        ("iin", "red", lambda t: t.isdigit() and len(t) == 12),
    ],
)
def test_a_code_typed_into_the_scanner(controls, world: World, kind, status, check) -> None:
    world.scanner.replug()
    fd = os.open(world.scanner.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        said = controls.do(
            {"action": "present", "kind": kind, "status": status, "source": "scanner"}
        )
        assert check(_read_line(fd))
    finally:
        os.close(fd)
    # What the journal says names nobody, not even masked.
    assert status in said and "scanner" in said and not any(c.isdigit() for c in said)


def test_the_camera_view_outlines_the_code_the_driver_was_given(controls, world: World) -> None:
    world.camera.reappear()
    world.camera.open()
    said = controls.do({"action": "present", "kind": "pass", "status": "green"})
    assert "camera" in said
    tap = controls.tap
    assert tap is not None
    for _ in range(10):  # what the capture driver's thread does
        tap.read()
    png = controls.camera_png()
    assert png is not None
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] == min(640, world.camera.width)  # the console shows it small
    green = (image[:, :, 1] > 180) & (image[:, :, 0] < 80) & (image[:, :, 2] < 80)
    assert green.sum() > 200  # the outline is drawn
    frame, _ = tap.last()
    assert frame is not None and render_png(frame)[1] == 1  # one code found


def test_no_frame_yet(world: World) -> None:
    assert WorldControls(world, watch=Watch(), tap=None).camera_png() is None
    png, found = render_png(None)
    assert found == 0 and png.startswith(b"\x89PNG")


def _codes_in_view(tap: FrameTap, frames: int = 30, *, want: int) -> bool:
    """Read frames as the capture driver does until ``want`` codes are in view (bounded)."""
    for _ in range(frames):
        tap.read()
        frame, _ = tap.last()
        if frame is not None and render_png(frame)[1] == want:
            return True
    return False


def test_the_phone_comes_down_after_the_light_answered(world: World) -> None:
    watch = Watch()
    tap = FrameTap(world.camera)
    controls = WorldControls(world, watch=watch, tap=tap, seed=1)
    world.camera.reappear()
    world.camera.open()
    controls.do({"action": "present", "kind": "pass", "status": "red"})
    assert _codes_in_view(tap, want=1)
    watch.add({"type": "decision", "decision": "deny", "reason": "status_not_allowed"})
    controls.close()  # the person lowers the phone now rather than LOWER_AFTER_S later
    assert _codes_in_view(tap, want=0)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:8088", ("127.0.0.1", 8088)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_the_web_address(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["localhost", ":8088", "host:http", "host:70000", ""])
def test_a_bad_web_address_says_what_is_wanted(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_the_runs_console_account_is_an_operator_with_a_random_password(tmp_path) -> None:
    auth = pytest.importorskip("kiosk.web.auth", reason="the console is not in this build")
    name, password, path = create_account(tmp_path / "state")
    _, other, _ = create_account(tmp_path / "other")
    assert password != other and len(password) >= auth.MIN_PASSWORD
    accounts = auth.Accounts(path)
    account = auth.authenticate(accounts, name, password)
    assert account is not None and account.role == "operator"
    assert auth.authenticate(accounts, name, other) is None
    assert password not in path.read_text()  # a salted hash, never the password
    assert path.stat().st_mode & 0o007 == 0  # not for everyone's eyes


def _kiosk_sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kiosk_sim_refuses_a_bad_or_remote_web_address() -> None:
    out = _kiosk_sim("--web", "localhost", "--count", "0")
    assert out.returncode == 2 and "HOST:PORT" in out.stderr
    out = _kiosk_sim("--web", "0.0.0.0:0", "--count", "0")
    assert out.returncode == 2 and "loopback only" in out.stderr
    assert _kiosk_sim("--pretty", "--json").returncode == 2  # one or the other


def test_the_tap_passes_the_cameras_faults_to_the_driver(world: World) -> None:
    tap = FrameTap(world.camera)
    world.camera.reappear()
    tap.open()
    assert tap.read() is not None
    frame, age = tap.last()
    assert frame is not None and age is not None and age >= 0
    tap.vanish()  # the simulator's own controls reach through the tap
    with pytest.raises(DeviceError):
        tap.read()
    with pytest.raises(DeviceError):
        tap.open()
    assert tap.last()[0] is frame  # the last frame stays for the view
    world.camera.reappear()


def test_a_jpeg_frame_is_drawn_too(world: World) -> None:
    # What an MJPG camera hands over (the simulated one too, once it sends MJPG): the JPEG
    # bytes, bare or wrapped like drivers/frames.py's MjpegFrame.
    gray = np.full((120, 160), 128, np.uint8)
    jpeg = cv2.imencode(".jpg", gray)[1].reshape(-1)

    class Wrapped:
        def __init__(self, data: np.ndarray) -> None:
            self.data = data

    for frame in (jpeg, Wrapped(jpeg)):
        png, found = render_png(frame)
        assert found == 0 and cv2.imdecode(np.frombuffer(png, np.uint8), 1).shape[1] == 160
