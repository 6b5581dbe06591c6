"""`kiosk run`: put the kiosk together, run the controller, and take it apart safely."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk import __version__
from kiosk.clock import Clock, SystemClock
from kiosk.clockguard import HWM_FILE, ClockGuard, kernel_clock_synchronised
from kiosk.config import Config, load_config
from kiosk.controller import GateController, GateTiming
from kiosk.core import EVENTS_DB, Core, build_core
from kiosk.liveness import Liveness
from kiosk.notify import Notifier, WatchdogPinger
from kiosk.policy import PolicyHolder, VenuePolicy
from kiosk.status.http import HttpStatusClient
from kiosk.store import EventStore
from kiosk.wiring import Hardware, SimHardware, build_hardware

log = logging.getLogger(__name__)

KEY_REFRESH_S = 3600.0
HOUSEKEEPING_S = 30.0
PASSBACK_KEEP_S = 86_400.0  # a day: longer than any anti-passback window in use
HWM_SAVE_S = 600.0  # the SD card is written rarely; a restart loses at most this much


class Daemon:
    """One running kiosk. Build with the configuration; ``run`` blocks until ``stop``."""

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
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self.liveness = Liveness()
        # Hardware first: building the board releases the relay before anything else happens.
        self.hardware: Hardware = build_hardware(cfg, sim=sim, liveness=self.liveness)
        synchronised = (sim and sim.clock_synchronised) or kernel_clock_synchronised
        self.clock_guard = ClockGuard(
            cfg.state_dir / HWM_FILE,
            clock=self.clock,
            leeway_s=cfg.kiosk.leeway_s,
            synchronised=synchronised,
        )
        self._watchdog = WatchdogPinger(self.notifier, alive=self._alive)
        self._ready_sent = False
        self._link_status = "status service not tried"
        try:
            self.core: Core = build_core(
                cfg, clock=self.clock, persistent=True, clock_trusted=self.clock_guard.trusted
            )
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
            mark_used=self.core.replay.mark_used,
            record_passage=self.core.passback.record_passage,
            reload_policy=self._reload_policy,
            heartbeat=self._heartbeat,
            on_event=on_event,
            occupancy=_last_occupancy(self.store),
            version=__version__,
        )

    def _reload_policy(self) -> VenuePolicy:
        return load_config(self.cfg.path).policy

    def _alive(self) -> bool:
        stale = self.liveness.stale()
        if stale:
            log.error("no progress in %s: watchdog pings stop", ", ".join(stale))
        return not stale

    def _heartbeat(self) -> None:
        """Every turn of the controller loop: READY once, then the watchdog pings."""
        if not self._ready_sent:
            self._ready_sent = True
            self.notifier.ready(f"deciding; {self._link_status}")
        self._watchdog.beat()

    def run(self) -> None:
        """Start the inputs and run the controller in this thread until stopped."""
        log.info(
            "kiosk %s at venue %s starting (policy %s)",
            self.cfg.kiosk.id,
            self.cfg.kiosk.venue_id,
            self.cfg.policy.name,
        )
        housekeeping = threading.Thread(target=self._housekeeping, name="keys", daemon=True)
        try:
            for device in self.hardware.inputs:
                device.start(self.controller.emit)
            self._try_status_link()
            housekeeping.start()
            self.controller.run()  # sends READY on its first turn
        finally:
            self.notifier.stopping()
            self._stopped.set()
            self.hardware.close()  # releases the relay first
            self.clock_guard.save()
            self.store.close()
            self.core.close()
            log.info("kiosk stopped; relay released")

    def _try_status_link(self) -> None:
        """Fetch the pass keys once before READY: the link is up, or known to be down."""
        lookup = self.core.lookup
        if isinstance(lookup, HttpStatusClient):
            ok = self.core.keys.refresh(lookup) if self.cfg.passes.refresh_keys else None
            self._link_status = {
                True: "status service reachable",
                False: "status service unreachable, offline rules apply",
                None: "status service configured",
            }[ok]
        elif lookup is None:
            self._link_status = "no status service configured"
        if self.clock_guard.problem():
            self._link_status += "; clock not trusted"

    def stop(self) -> None:
        """Ask the controller to stop (any thread, signal handlers too)."""
        from kiosk.events import Stop

        self.controller.emit(Stop())

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the daemon cleanly (relay released first on the way out)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def _housekeeping(self) -> None:
        """Refresh the pass keys now and then; keep the clock's high-water mark."""
        lookup = self.core.lookup
        refresh = self.cfg.passes.refresh_keys and isinstance(lookup, HttpStatusClient)
        next_keys = time.monotonic() + KEY_REFRESH_S
        next_save = time.monotonic() + HWM_SAVE_S
        while not self._stopped.wait(HOUSEKEEPING_S):
            self.clock_guard.problem()  # moves the mark up, says so when the clock jumps
            now = time.monotonic()
            if refresh and now >= next_keys:
                self.core.keys.refresh(lookup)  # type: ignore[arg-type]
                next_keys = now + KEY_REFRESH_S
            if now >= next_save:
                self.clock_guard.save()
                self._prune()
                next_save = now + HWM_SAVE_S

    def _prune(self) -> None:
        """Forget what can no longer matter: used passes past their time, old passages."""
        self.core.replay.prune()
        window = max(self.cfg.policy.anti_passback_s, PASSBACK_KEEP_S)
        self.core.passback.prune(window)


def _last_occupancy(store: EventStore) -> int:
    """The occupancy of the newest event that carries one, so a restart keeps counting."""
    for event in reversed(store.events(after_seq=max(0, store.last_seq - 1000))):
        if isinstance(event.get("occupancy"), int):
            return event["occupancy"]
    return 0
