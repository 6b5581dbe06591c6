"""Checks of the kiosk's devices: camera, scanner and GPIO, through the kiosk's own drivers.

Like `kiosk/wiring.py` this module puts drivers together, so it imports them (inside the
checks, so that a kiosk without a camera never loads OpenCV). The GPIO check never
energises the relay: it builds the relay first, released, and closes it released.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from kiosk.config import Config
from kiosk.doctor.report import Check
from kiosk.errors import KioskError
from kiosk.wiring import SimHardware

CAMERA_TIMEOUT_S = 3.0
"""The camera must open and deliver its first frame within this."""
_CAMERA_GRACE_S = 2.0
# A stuck capture thread is given this much longer before its source is closed under it.

_SIMULATED = "simulated: "
"""How a row starts when the device is simulated and no simulation is running to check it."""

_SCANNER_FIX = "check the USB cable; ls /dev/ttyACM* /dev/serial/by-id"
_HOLDS_IT = "is the kiosk running? it holds the device: systemctl stop ashyq-kiosk, then retry"


# -- camera --------------------------------------------------------------------------------


def _camera_fix(url: str) -> str:
    if url.startswith("sim:"):
        return "the simulated camera is unplugged, or this is no simulation (sim: needs kiosk sim)"
    if url == "picamera2":
        return "check the ribbon cable and that the camera is enabled; rpicam-hello --list-cameras"
    if url.startswith("/dev/"):
        return f"check the USB cable; ls /dev/video* /dev/v4l/by-id; {_HOLDS_IT}"
    if "://" in url:
        return "check the camera's network and the address and login in [camera] url"
    return "check the video file named in [camera] url exists"


def _first_frame(source: Any, timeout_s: float) -> tuple[Any, BaseException | None, bool]:
    """Open ``source`` and read until a frame arrives: (frame, error, timed_out).

    In a thread, because a V4L2 or stream read can block for longer than the technician
    should wait; the source is closed afterwards in every case.
    """
    got: dict[str, Any] = {}
    stop = threading.Event()

    def grab() -> None:
        try:
            source.open()
            while not stop.is_set():
                frame = source.read()
                if frame is not None:
                    got["frame"] = frame
                    return
        except Exception as exc:  # noqa: BLE001 - any driver or library error is the answer here
            got["error"] = exc

    thread = threading.Thread(target=grab, name="doctor-camera", daemon=True)
    thread.start()
    thread.join(timeout_s)
    stop.set()
    timed_out = thread.is_alive()
    if timed_out:
        # Closing a capture under a thread blocked in it can crash some back ends; wait a
        # little more, then close only if it has returned (the process ends soon anyway).
        thread.join(_CAMERA_GRACE_S)
    if not thread.is_alive():
        # Closing a device that failed may fail too; there is nothing more to report.
        with contextlib.suppress(Exception):
            source.close()
    return got.get("frame"), got.get("error"), timed_out


def check_camera(cfg: Config, sim: SimHardware) -> Check:
    """Open the configured camera and read one frame; compare its size with the configured."""
    name = "camera"
    cam = cfg.camera
    if not cam.enabled:
        return Check.skipped(name, "disabled ([camera] enabled = false)")
    # The table reports a camera that does not open; OpenCV's own console warnings about
    # it would only clutter the technician's screen (set before cv2 is first imported).
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    from drivers.camera import make_source

    if cam.url.startswith("sim:") and (cam.url[4:] or "default") not in sim.frame_sources:
        # The simulation profile: the camera is frames fed by kiosk sim, not a device here.
        return Check.passed(
            name, f"{_SIMULATED}{cam.url} is fed by kiosk sim (not running now, not checked)"
        )
    fix = _camera_fix(cam.url)
    try:
        source = make_source(
            cam.url, width=cam.width, height=cam.height, fps=cam.fps, sim_sources=sim.frame_sources
        )
    except KioskError as exc:
        return Check.failed(name, str(exc), fix)
    shown = source.name
    frame, error, timed_out = _first_frame(source, CAMERA_TIMEOUT_S)
    if error is not None:
        return Check.failed(
            name, str(error) if isinstance(error, KioskError) else f"{shown}: {error}", fix
        )
    if frame is None:
        why = f"no frame within {CAMERA_TIMEOUT_S:.0f} s" if timed_out else "no frame"
        return Check.failed(name, f"{shown}: {why}", fix)
    height, width = frame.shape[:2]
    got = f"{width}x{height}"
    if (width, height) != (cam.width, cam.height):
        return Check.warned(
            name,
            f"{shown}: first frame {got}, configured {cam.width}x{cam.height}",
            "the camera does not offer the configured size: set [camera] width and height "
            "to one it supports (v4l2-ctl --list-formats-ext), or use another camera",
        )
    return Check.passed(name, f"{shown}: first frame {got} as configured")


# -- scanner -------------------------------------------------------------------------------


def check_scanner(cfg: Config, sim: SimHardware) -> Check:
    """Open the scanner's serial port with pyserial and close it again."""
    name = "scanner"
    sc = cfg.scanner
    if not sc.enabled:
        return Check.skipped(name, "disabled ([scanner] enabled = false)")
    import serial

    url, shown = sc.url, sc.url
    if url.startswith("sim:"):
        try:
            url = sim.serial_ports[url[4:] or "default"]
        except KeyError:
            return Check.passed(
                name,
                f"{_SIMULATED}{shown} is a pseudo-terminal made by kiosk sim "
                "(not running now, not checked)",
            )
        shown = f"{sc.url} ({url})"
    try:
        port = serial.serial_for_url(url, baudrate=sc.baud, timeout=0.05)
    except ValueError as exc:
        return Check.failed(name, f"{shown}: cannot use it: {exc}", "check [scanner] url and baud")
    except (serial.SerialException, OSError) as exc:
        code = getattr(exc, "errno", None)
        if code == errno.ENOENT or (code is None and not os.path.exists(url) and "://" not in url):
            return Check.failed(name, f"{shown}: no such port (unplugged?)", _SCANNER_FIX)
        if code == errno.EBUSY:
            return Check.failed(name, f"{shown}: port busy", _HOLDS_IT)
        if code == errno.EACCES:
            return Check.failed(
                name,
                f"{shown}: permission denied",
                "the port's group must be dialout (the service user ashyq-kiosk is in it)",
            )
        return Check.failed(name, f"{shown}: cannot open: {exc}", _SCANNER_FIX)
    port.close()
    real = os.path.realpath(url) if os.path.islink(url) and not sc.url.startswith("sim:") else ""
    return Check.passed(name, f"{shown}{f' ({real})' if real else ''}: opened at {sc.baud} baud")


# -- GPIO ----------------------------------------------------------------------------------


def _gpio_fix(message: str) -> str:
    text = message.lower()
    if "in use" in text or "busy" in text:
        return "is the kiosk running? it holds the pins: systemctl stop ashyq-kiosk, then retry"
    if "pin factory" in text:
        return (
            "on a Pi: apt-get install python3-lgpio (a virtualenv needs "
            '--system-site-packages); off a Pi, [gpio] pin_factory = "mock" simulates'
        )
    return "check the pin numbers (BCM) in [gpio]; each pin may be used once"


def _claim_pins(
    cfg: Config, sim: SimHardware, inputs: dict[str, int]
) -> tuple[bool, dict[str, bool]]:
    """Build every GPIO device, relay first, read the inputs, close all again, relay first.

    Returns whether the relay was released throughout and, per fitted input, whether its
    pin reads low. `KioskError` when the pin factory or a pin cannot be had.
    """
    from gpiozero import DigitalInputDevice
    from gpiozero.exc import GPIOZeroError

    from drivers.gpio import BuzzerSounder, LightIndicator, RelayTurnstile, make_pin_factory

    g = cfg.gpio
    closers: list[Callable[[], None]] = []
    levels: dict[str, bool] = {}
    try:
        factory = make_pin_factory(g.pin_factory, mock_factory=sim.pin_factory)
        # The relay first and released (initial_value False): from here on the turnstile
        # stays as a stopped kiosk leaves it, whatever fails next. Nothing energises it.
        relay = RelayTurnstile(
            g.relay,
            active_high=g.relay_active_high,
            fail_safe=cfg.gate.fail_safe,
            pin_factory=factory,
        )
        closers.append(relay.close)
        light = LightIndicator(
            kind=g.led_kind,
            red=g.led_red,
            green=g.led_green,
            blue_or_amber=g.led_blue if g.led_kind == "rgb" else g.led_amber,
            idle_light=cfg.gate.idle_light,
            pin_factory=factory,
        )
        closers.append(light.close)
        buzzer = BuzzerSounder(g.buzzer, pin_factory=factory)
        closers.append(buzzer.close)
        for what, pin in inputs.items():
            if pin < 0:
                continue
            try:
                # Claimed as drivers.gpio.GpioInputs claims them (pull-up, active low): the
                # driver reports edges as events, the doctor needs the level now.
                device = DigitalInputDevice(pin, pull_up=True, pin_factory=factory)
            except (GPIOZeroError, OSError, RuntimeError, ValueError) as exc:
                raise KioskError(f"{what} on GPIO{pin}: {type(exc).__name__}: {exc}") from exc
            closers.append(device.close)
            levels[what] = bool(device.is_active)
        return not relay.energised, levels
    finally:
        for close in closers:  # the relay's close comes first and releases it once more
            with contextlib.suppress(Exception):  # every device gets its chance to close
                close()


def check_gpio(cfg: Config, sim: SimHardware) -> list[Check]:
    """Claim every configured pin briefly, relay first and released; read the input levels.

    Gives the ``gpio``, ``fire alarm``, ``passage sensor`` and ``exit sensor`` checks.
    """
    from gpiozero.exc import PinFactoryFallback

    g = cfg.gpio
    inputs = {
        "passage sensor": g.passage_sensor,
        "exit sensor": g.exit_sensor,
        "fire alarm": g.fire_alarm,
    }
    try:
        with warnings.catch_warnings():
            # gpiozero warns on stderr for each pin library it falls back from; a failure
            # is reported in the table with its hint, so those warnings are noise here.
            warnings.simplefilter("ignore", PinFactoryFallback)
            released, levels = _claim_pins(cfg, sim, inputs)
    except KioskError as exc:
        checks = [Check.failed("gpio", str(exc), _gpio_fix(str(exc)))]
        return checks + [Check.skipped(what, "not read (GPIO failed)") for what in _INPUT_ORDER]
    blue_or_amber = g.led_blue if g.led_kind == "rgb" else g.led_amber
    factory_name = g.pin_factory if g.pin_factory != "default" else "default factory"
    claimed = (
        f"{factory_name}: relay GPIO{g.relay} {'released' if released else 'ENERGISED'}, "
        f"light GPIO{g.led_red}/{g.led_green}/{blue_or_amber}, buzzer GPIO{g.buzzer}, "
        + ", ".join(f"{what.split()[0]} GPIO{pin}" for what, pin in inputs.items() if pin >= 0)
        + " claimed"
    )
    if g.pin_factory == "mock":
        claimed = f"{_SIMULATED}{claimed}"
    gpio = Check.passed("gpio", claimed)
    if not released:  # pragma: no cover - the driver builds the relay released
        gpio = Check.failed("gpio", claimed, "the relay driver is broken: do not run the kiosk")
    if g.pin_factory == "mock" and sim.pin_factory is None:
        # Mock pins with nobody at their far end read the pull-up (an open fire contact):
        # kiosk sim's turnstile model is what closes the contact and clears the beams.
        return [gpio, *(_simulated_input(what, inputs[what]) for what in _INPUT_ORDER)]
    return [gpio, *(_input_check(what, inputs[what], levels.get(what)) for what in _INPUT_ORDER)]


def _simulated_input(what: str, pin: int) -> Check:
    if pin < 0:
        return Check.skipped(what, f"not fitted ([gpio] {what.replace(' ', '_')} = -1)")
    return Check.passed(
        what, f"{_SIMULATED}mock GPIO{pin}, driven by kiosk sim's turnstile (not read now)"
    )


_INPUT_ORDER = ("fire alarm", "passage sensor", "exit sensor")


def _input_check(what: str, pin: int, low: bool | None) -> Check:
    if pin < 0 or low is None:
        return Check.skipped(what, f"not fitted ([gpio] {what.replace(' ', '_')} = -1)")
    if what == "fire alarm":
        # A normally-closed contact to ground: closed (low) is normal; open (high) is an
        # alarm, or a cut wire, which must look the same.
        if low:
            return Check.passed(what, f"contact closed (GPIO{pin} low): no alarm")
        return Check.failed(
            what,
            f"fire contact OPEN: the kiosk will start in emergency (GPIO{pin} high)",
            f"if there is no alarm: check the fire panel's normally-closed contact and its "
            f"wires to GPIO{pin} and ground (an open circuit reads as an alarm)",
        )
    if low:
        return Check.warned(
            what,
            f"beam broken (GPIO{pin} low): something is in the way, or the sensor is miswired",
            f"clear the {what.split()[0]} lane; check the sensor's power and its wire to "
            f"GPIO{pin} (active low)",
        )
    return Check.passed(what, f"beam clear (GPIO{pin} high)")
