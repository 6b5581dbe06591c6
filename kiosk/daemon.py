"""`kiosk run`: build the kiosk (kiosk/assembly.py), run it, tell systemd, stop it safely."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from kiosk.assembly import Kiosk, RecordTap, build_kiosk
from kiosk.clock import Clock
from kiosk.config import Config
from kiosk.core import Core
from kiosk.fleet.reload import install_reload_handler
from kiosk.gate.controller import GateController
from kiosk.gate.view import GateView
from kiosk.liveness import Liveness
from kiosk.notify import Notifier, WatchdogPinger
from kiosk.store import EventStore
from kiosk.web.app import WebFace
from kiosk.wiring import Hardware, SimHardware

log = logging.getLogger(__name__)

CONTROLLER_PROMISE_S = 5.0  # the loop turns at least once a second; /healthz and the watchdog


class Daemon:
    """One running kiosk under systemd. Build with the configuration; ``run`` blocks until
    ``stop``. ``sim`` are the simulated far ends; ``on_event`` is told of every record."""

    def __init__(
        self,
        cfg: Config,
        *,
        sim: SimHardware | None = None,
        clock: Clock | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.liveness = Liveness()
        self._watchdog = WatchdogPinger(self.notifier, alive=self._alive)
        self._ready_sent = False
        self.kiosk: Kiosk = build_kiosk(
            cfg, far_ends=sim, clock=clock, heartbeat=self, liveness=self.liveness
        )
        if on_event is not None:
            self.kiosk.view.subscribe(RecordTap(on_event))

    # The parts, for the simulation and the tests.
    @property
    def controller(self) -> GateController:
        return self.kiosk.controller

    @property
    def view(self) -> GateView:
        return self.kiosk.view

    @property
    def web(self) -> WebFace:
        web = self.kiosk.web
        assert web is not None  # build_kiosk always builds the web face ([web] says if it serves)
        return web

    @property
    def hardware(self) -> Hardware:
        return self.kiosk.hardware

    @property
    def store(self) -> EventStore:
        return self.kiosk.store

    @property
    def core(self) -> Core:
        return self.kiosk.core

    def _alive(self) -> bool:
        stale = self.liveness.stale()
        if stale:
            log.error("no progress in %s: watchdog pings stop", ", ".join(stale))
        return not stale

    def beat(self) -> None:
        """Every turn of the controller loop: READY once, then the watchdog pings."""
        if not self._ready_sent:
            self._ready_sent = True
            self.notifier.ready(f"deciding; {self.kiosk.link_status}")
        self.liveness.beat("controller", CONTROLLER_PROMISE_S)  # /healthz, as the watchdog
        self._watchdog.beat()

    def run(self) -> None:
        """Start the kiosk and run the controller in this thread until stopped."""
        log.info(
            "kiosk %s at venue %s starting (policy %s)",
            self.cfg.kiosk.id,
            self.cfg.kiosk.venue_id,
            self.cfg.policy.name,
        )
        try:
            self.kiosk.start()
            self.kiosk.controller.run()  # READY on its first turn
        finally:
            self.notifier.stopping()
            self.kiosk.close()

    def stop(self) -> None:
        """Ask the controller to stop (any thread, signal handlers too)."""
        self.kiosk.stop()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the daemon cleanly (relay released first on the way out);
        SIGHUP reads the configuration again (kiosk/fleet/reload.py), as `reload_config` does.

        The handler runs on the controller's own thread, possibly inside the queue's lock:
        it hands the stop to a new thread rather than touch the queue itself.
        """
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: threading.Thread(target=self.stop).start())
        install_reload_handler(self.kiosk.controller.emit)  # SIGHUP: systemctl reload
