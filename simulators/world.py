"""The simulated entrance around one kiosk: status service, camera feed, scanner on a
pseudo-terminal, turnstile on gpiozero mock pins. The real daemon and its drivers run in it.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from kiosk.config import Config
from kiosk.config.values import is_loopback
from kiosk.secret import reveal
from kiosk.wiring import SimHardware
from simulators.camera_feed import SimFrameSource
from simulators.population import Population, load
from simulators.scanner_pty import PtyScanner
from simulators.status_service import StatusService
from simulators.turnstile import SimPinFactory, TurnstileModel

SIM_PREFIX = "sim/"
"""mqtt.md, Simulation: what a simulated kiosk puts before the configured topic prefix."""


def remote_brokers(cfg: Config) -> list[str]:
    """The configured MQTT brokers that are not on loopback (none when MQTT is off).

    Judged from the URL alone, never by connecting or resolving: only ``localhost`` and
    loopback addresses (127.0.0.0/8, ::1) count as this machine.
    """
    if not cfg.mqtt.enabled:
        return []
    return [url for url in cfg.mqtt.brokers if not _is_loopback(url)]


def use_sim_prefix(cfg: Config) -> Config:
    """``cfg`` with ``sim/`` before the configured topic prefix (once): `kiosk sim` never
    uses the fleet's own topics, even on a broker the fleet also uses."""
    if cfg.mqtt.prefix.startswith(SIM_PREFIX):
        return cfg
    return replace(cfg, mqtt=replace(cfg.mqtt, prefix=SIM_PREFIX + cfg.mqtt.prefix))


def _is_loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)


class World:
    """Everything around the kiosk. ``simulated(cfg)`` is a configuration pointed at it."""

    def __init__(self, cfg: Config, *, population: Population | None = None, seed: int = 0):
        self.population = population or load()
        self._tmp = tempfile.TemporaryDirectory(prefix="kiosk-world-")
        self.folder = Path(self._tmp.name)
        self.service = StatusService(self.population, token=reveal(cfg.token)).start()
        self.pins = SimPinFactory()
        self.turnstile = TurnstileModel.for_config(self.pins, cfg.gpio, cfg.gate)
        cam = cfg.camera
        self.camera = SimFrameSource(cam.width, cam.height, cam.fps, seed=seed)
        self.scanner = PtyScanner(self.folder)
        # The simulated machine's NTP state (the host's own may be anything).
        self.clock_synchronised: bool | None = True

    def simulated(self, cfg: Config, *, state_dir: Path | None = None) -> Config:
        """``cfg`` pointed at this world: same profile, simulated far ends, own state folder."""
        status = cfg.status
        if status.backend == "http":
            status = replace(status, url=self.service.url)
        return replace(
            cfg,
            status=status,
            gpio=replace(cfg.gpio, pin_factory="mock"),
            camera=replace(cfg.camera, url="sim:"),
            scanner=replace(cfg.scanner, url="sim:"),
            kiosk=replace(cfg.kiosk, state_dir=str(state_dir or self.folder / "state")),
        )

    def hardware(self) -> SimHardware:
        """The simulated far ends, for the wiring module."""
        return SimHardware(
            pin_factory=self.pins,
            frame_sources={"default": self.camera},
            serial_ports={"default": str(self.scanner.path)},
            clock_synchronised=lambda: self.clock_synchronised,
        )

    def close(self) -> None:
        """Stop the simulated world."""
        for close in (self.turnstile.close, self.scanner.close, self.service.stop):
            with contextlib.suppress(Exception):
                close()
        self._tmp.cleanup()
