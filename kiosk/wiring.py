"""The one place that builds concrete drivers from the configuration, by name or URL.

Simulators come in through ``SimHardware``: the same drivers run, only their far end (pin
factory, frame source, pseudo-terminal) is simulated.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.config import Config
from kiosk.devices import Indicator, InputDevice, Sounder, Turnstile
from kiosk.errors import KioskError
from kiosk.liveness import Liveness

log = logging.getLogger(__name__)


@dataclass
class SimHardware:
    """The simulated far ends of the devices, for `sim:` URLs and the `mock` pin factory."""

    pin_factory: Any = None
    frame_sources: Mapping[str, Any] = field(default_factory=dict)
    serial_ports: Mapping[str, str] = field(default_factory=dict)
    # Whether the (simulated) machine's clock is synchronised; None: ask the kernel.
    clock_synchronised: Callable[[], bool | None] | None = None


@dataclass
class Hardware:
    """The kiosk's devices; ``close`` releases the relay before anything else."""

    turnstile: Turnstile
    indicator: Indicator
    sounder: Sounder
    inputs: list[InputDevice]
    _close: Callable[[], None]

    turnstile_released: bool = False

    def close(self) -> None:
        """Release the relay, then stop the inputs and close the pins."""
        try:
            self.turnstile.release()
            self.turnstile_released = True
        except Exception as exc:  # noqa: BLE001 - go on closing; the unit's ExecStopPost tries again
            log.critical("could not release the relay: %s", exc)
        for device in self.inputs:
            with contextlib.suppress(Exception):
                device.stop()
        self._close()


def build_hardware(
    cfg: Config, *, sim: SimHardware | None = None, liveness: Liveness | None = None
) -> Hardware:
    """Build every configured device; the relay is built (released) before anything else."""
    from drivers.gpio import GpioBoard, make_pin_factory

    sim = sim or SimHardware()
    liveness = liveness or Liveness()
    factory = make_pin_factory(cfg.gpio.pin_factory, mock_factory=sim.pin_factory)
    board = GpioBoard.from_config(cfg.gpio.as_dict(), cfg.gate.as_dict(), pin_factory=factory)
    inputs: list[InputDevice] = [board.inputs]
    try:
        if cfg.camera.enabled:
            inputs.append(_camera(cfg, sim, liveness))
        if cfg.scanner.enabled:
            inputs.append(_scanner(cfg, sim, liveness))
    except BaseException:
        board.close()
        raise
    return Hardware(board.turnstile, board.indicator, board.sounder, inputs, board.close)


def _camera(cfg: Config, sim: SimHardware, liveness: Liveness) -> InputDevice:
    from drivers.camera import CameraReader, make_source
    from drivers.decoder import MotionGate, make_decoder

    cam = cfg.camera
    source = make_source(
        cam.url, width=cam.width, height=cam.height, fps=cam.fps, sim_sources=sim.frame_sources
    )
    return CameraReader(
        source,
        decoder=make_decoder(cam.decoder),
        gate=MotionGate(),
        reconnect_max_s=cam.reconnect_max_s,
        liveness=liveness,
    )


def _scanner(cfg: Config, sim: SimHardware, liveness: Liveness) -> InputDevice:
    from drivers.scanner import SerialScanner

    url = cfg.scanner.url
    if url.startswith("sim:"):
        try:
            url = sim.serial_ports[url[4:] or "default"]
        except KeyError:
            raise KioskError(f"[scanner] url {url!r}: no simulated scanner is running") from None
    return SerialScanner(
        url,
        baud=cfg.scanner.baud,
        reconnect_max_s=cfg.scanner.reconnect_max_s,
        liveness=liveness,
    )
