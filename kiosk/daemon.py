"""`kiosk run`: put the kiosk together, run the controller, and take it apart safely."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from kiosk import __version__
from kiosk.clock import Clock, SystemClock
from kiosk.config import Config, load_config
from kiosk.controller import GateController, GateTiming
from kiosk.core import EVENTS_DB, Core, build_core
from kiosk.policy import PolicyHolder, VenuePolicy
from kiosk.status.http import HttpStatusClient
from kiosk.store import EventStore
from kiosk.wiring import Hardware, SimHardware, build_hardware

log = logging.getLogger(__name__)

KEY_REFRESH_S = 3600.0


class Daemon:
    """One running kiosk. Build with the configuration; ``run`` blocks until ``stop``."""

    def __init__(
        self,
        cfg: Config,
        *,
        sim: SimHardware | None = None,
        clock: Clock | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        # Hardware first: building the board releases the relay before anything else happens.
        self.hardware: Hardware = build_hardware(cfg, sim=sim)
        try:
            self.core: Core = build_core(cfg, clock=self.clock, persistent=True)
            self.store = EventStore(
                cfg.state_dir / EVENTS_DB,
                kiosk_id=cfg.kiosk.id,
                venue_id=cfg.kiosk.venue_id,
                clock=self.clock,
            )
        except BaseException:
            self.hardware.close()
            raise
        self._stopped = threading.Event()
        self.controller = GateController(
            checker=self.core.checker,
            record=self.store.record,
            turnstile=self.hardware.turnstile,
            indicator=self.hardware.indicator,
            sounder=self.hardware.sounder,
            policy=PolicyHolder(cfg.policy),
            timing=GateTiming.from_config(cfg.gate, cfg.kiosk.leeway_s),
            clock=self.clock,
            mark_used=self.core.replay.mark_used if self.core.replay is not None else _nothing,
            record_passage=self.core.passback.record_passage,
            reload_policy=self._reload_policy,
            heartbeat=heartbeat,
            on_event=on_event,
            occupancy=_last_occupancy(self.store),
            version=__version__,
        )

    def _reload_policy(self) -> VenuePolicy:
        return load_config(self.cfg.path).policy

    def run(self) -> None:
        """Start the inputs and run the controller in this thread until stopped."""
        log.info(
            "kiosk %s at venue %s starting (policy %s)",
            self.cfg.kiosk.id,
            self.cfg.kiosk.venue_id,
            self.cfg.policy.name,
        )
        refresher = threading.Thread(target=self._refresh_keys, name="keys", daemon=True)
        try:
            for device in self.hardware.inputs:
                device.start(self.controller.emit)
            refresher.start()
            self.controller.run()
        finally:
            self._stopped.set()
            self.hardware.close()  # releases the relay first
            self.store.close()
            self.core.close()
            log.info("kiosk stopped; relay released")

    def stop(self) -> None:
        """Ask the controller to stop (any thread, signal handlers too)."""
        from kiosk.events import Stop

        self.controller.emit(Stop())

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the daemon cleanly (relay released first on the way out)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def _refresh_keys(self) -> None:
        lookup = self.core.lookup
        if not self.cfg.passes.refresh_keys or not isinstance(lookup, HttpStatusClient):
            return
        while not self._stopped.is_set():
            self.core.keys.refresh(lookup)
            self._stopped.wait(KEY_REFRESH_S)


def _nothing(*_: object) -> None:
    return None


def _last_occupancy(store: EventStore) -> int:
    """The occupancy of the newest event that carries one, so a restart keeps counting."""
    for event in reversed(store.events(after_seq=max(0, store.last_seq - 1000))):
        if isinstance(event.get("occupancy"), int):
            return event["occupancy"]
    return 0
