"""`kiosk run`: put the kiosk together, run the controller, and take it apart safely."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk import __version__
from kiosk.clock import Clock, SystemClock, parse_time
from kiosk.clockguard import HWM_FILE, ClockGuard, kernel_clock_synchronised
from kiosk.config import Config, load_config
from kiosk.controller import GateController, GateTiming
from kiosk.core import EVENTS_DB, Core, build_core
from kiosk.errors import KioskError
from kiosk.fleet.commands import CommandReceiver
from kiosk.fleet.link import MqttLink
from kiosk.fleet.outbox import Outbox
from kiosk.fleet.state import StatePublisher
from kiosk.gate.view import GateSnapshot, GateView
from kiosk.jwks import KeySet
from kiosk.liveness import Liveness
from kiosk.metrics import Metrics
from kiosk.notify import Notifier, WatchdogPinger
from kiosk.policy import PolicyHolder, VenuePolicy
from kiosk.replay import ReplayStore
from kiosk.secret import reveal
from kiosk.status.http import HttpStatusClient
from kiosk.status.mqtt import MqttStatusClient
from kiosk.store import EventStore
from kiosk.web.app import WebFace
from kiosk.wiring import Hardware, SimHardware, build_hardware

log = logging.getLogger(__name__)

KEY_REFRESH_S = 3600.0
LOOKUP_MARGIN_S = 1.0  # the controller's own guard beyond the lookup's deadline
LINK_WAIT_S = 3.0  # READY waits this long for the broker, then the kiosk decides offline
COMMANDS_DB = "commands.sqlite"  # executed command jtis: rare, so written at once
HOUSEKEEPING_S = 30.0
PASSBACK_KEEP_S = 86_400.0  # a day: longer than any anti-passback window in use
RESTORE_LOOKBACK_S = 7 * 86_400.0  # opening hours repeat weekly
HWM_SAVE_S = 600.0  # the SD card is written rarely; a restart loses at most this much
CONTROLLER_PROMISE_S = 5.0  # the loop turns at least once a second; /healthz and the watchdog


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
        self._on_event = on_event
        try:
            self.link = build_link(cfg) if cfg.mqtt.enabled else None
            lookup = (
                MqttStatusClient(self.link) if self.link and cfg.status.backend == "mqtt" else None
            )
            self.core: Core = build_core(
                cfg,
                clock=self.clock,
                persistent=True,
                lookup=lookup,
                clock_trusted=self.clock_guard.trusted,
            )
            self.store = EventStore(
                cfg.state_dir / EVENTS_DB,
                kiosk_id=cfg.kiosk.id,
                venue_id=cfg.kiosk.venue_id,
                clock=self.clock,
                max_events=cfg.mqtt.max_events,
            )
        except BaseException:
            self.hardware.close()
            raise
        self.outbox = (
            Outbox(self.store, self.link, retention_s=cfg.mqtt.retention_s) if self.link else None
        )
        self._stopped = threading.Event()
        # The controller's first journal line says so when it restarts in lockdown or emergency.
        last_mode = self.store.last_mode()
        self.controller = GateController(
            checker=self.core.checker,
            record=self._record,
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
            on_state=self._publish_state,
            occupancy=_restored_occupancy(self.store, cfg.policy, self.clock.time()),
            version=__version__,
            lockdown=last_mode == "lockdown",
            latched=last_mode == "emergency",
            lookup_timeout_s=cfg.status.deadline_ms / 1000.0 + LOOKUP_MARGIN_S,
            fire_input=_fire_input(cfg),
        )
        # The observable gate and the web face (display.md). The controller does not publish
        # into the view yet (the core's rewiring does): until then records and the mode are
        # handed to it from here (_record, _publish_state).
        self.view = GateView(
            GateSnapshot(capacity=cfg.policy.capacity, kiosk_version=__version__),
            now=self.clock.time,
        )
        self.metrics = Metrics(version=__version__)
        self.view.subscribe(self.metrics)
        self.web = WebFace(
            cfg,
            view=self.view,
            emit=self.controller.emit,
            liveness=self.liveness,
            metrics=self.metrics,
            now=self.clock.time,
        )
        self.state_pub: StatePublisher | None = None
        self.commands: CommandReceiver | None = None
        if self.link is not None:
            self.state_pub = StatePublisher(self.link, initial=self.controller.state())
            self._command_replay = ReplayStore(cfg.state_dir / COMMANDS_DB, clock=self.clock)
            operator_keys = _operator_keys(cfg)
            self.commands = CommandReceiver(
                self.link,
                venue_id=cfg.kiosk.venue_id,
                operator_keys=lambda: operator_keys,
                replay=self._command_replay,
                execute=self.controller.emit,
                record=self._record_and_tell,
                clock=self.clock,
                leeway_s=cfg.kiosk.leeway_s,
            )

    def _record(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Commit to the store first; then the outbox may send it (mqtt.md: local first)."""
        event = self.store.record(type_, **fields)
        if self.outbox is not None:
            self.outbox.wake()
        self.view.recorded(event)
        return event

    def _record_and_tell(self, type_: str, **fields: Any) -> dict[str, Any]:
        # Records made outside the controller (refused remote commands) are shown too.
        event = self._record(type_, **fields)
        if self._on_event is not None:
            self._on_event(event)
        return event

    def _publish_state(self, state: dict[str, Any]) -> None:
        self.view.publish(mode=state["mode"], occupancy=state.get("occupancy"))
        if self.state_pub is not None:
            self.state_pub.publish_state(state)

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
        self.liveness.beat("controller", CONTROLLER_PROMISE_S)
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
            if self.link is not None:
                self.link.start()
                assert self.outbox is not None
                self.outbox.start()
            self._try_status_link()
            housekeeping.start()
            self.web.start()
            self.controller.run()  # sends READY on its first turn
        finally:
            self.notifier.stopping()
            self._stopped.set()
            # Each step on its own: one failing must not skip the others.
            failed: list[str] = []
            for step in (
                self.hardware.close,  # releases the relay first
                self.web.stop,
                self._stop_link,
                self.clock_guard.save,
                self.store.close,
                self.core.close,
            ):
                try:
                    step()
                except Exception as exc:
                    failed.append(step.__qualname__)
                    log.error("shutdown: %s failed: %s", step.__qualname__, exc)
            released = "Hardware.close" not in failed and self.hardware.turnstile_released
            log.info("kiosk stopped; %s", "relay released" if released else "RELAY NOT RELEASED")

    def _stop_link(self) -> None:
        if self.link is None:
            return
        assert self.outbox is not None
        self.outbox.flush(1.0)  # what can go out in a second goes; the rest waits in the store
        self.outbox.stop()
        self.link.stop()  # publishes the offline state (the Will)
        self._command_replay.close()

    def _try_status_link(self) -> None:
        """Fetch the pass keys once before READY: the link is up, or known to be down."""
        lookup = self.core.lookup
        # The broker carries events and commands whatever asks the status: wait for it once.
        broker_up = self.link.wait_connected(LINK_WAIT_S) if self.link is not None else False
        if isinstance(lookup, HttpStatusClient):
            ok = self.core.keys.refresh(lookup) if self.cfg.passes.refresh_keys else None
            self._link_status = {
                True: "status service reachable",
                False: "status service unreachable, offline rules apply",
                None: "status service configured",
            }[ok]
        elif isinstance(lookup, MqttStatusClient):
            self._link_status = (
                "broker connected" if broker_up else "broker unreachable, offline rules apply"
            )
        elif lookup is None:
            self._link_status = "no status service configured"
        if self.clock_guard.problem():
            self._link_status += "; clock not trusted"

    def stop(self) -> None:
        """Ask the controller to stop (any thread, signal handlers too)."""
        from kiosk.events import Stop

        self.controller.emit(Stop())

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the daemon cleanly (relay released first on the way out).

        The handler runs on the controller's own thread, possibly inside the queue's lock:
        it hands the stop to a new thread rather than touch the queue itself.
        """
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: threading.Thread(target=self.stop).start())

    def _housekeeping(self) -> None:
        """Refresh the pass keys now and then; keep the clock's high-water mark."""
        refresh = self.cfg.passes.refresh_keys and isinstance(self.core.lookup, HttpStatusClient)
        next_keys = time.monotonic() + KEY_REFRESH_S
        next_save = time.monotonic() + HWM_SAVE_S
        while not self._stopped.wait(HOUSEKEEPING_S):
            try:
                self._housekeeping_turn(refresh, next_keys, next_save)
            except Exception as exc:  # a full disk must not end the housekeeping for good
                log.error("housekeeping failed: %s", exc)
            now = time.monotonic()
            if now >= next_keys:
                next_keys = now + KEY_REFRESH_S
            if now >= next_save:
                next_save = now + HWM_SAVE_S

    def _housekeeping_turn(self, refresh: bool, next_keys: float, next_save: float) -> None:
        self.clock_guard.problem()  # moves the mark up, says so when the clock jumps
        now = time.monotonic()
        if refresh and now >= next_keys:
            self.core.keys.refresh(self.core.lookup)  # type: ignore[arg-type]
        if now >= next_save:
            self.clock_guard.save()
            self._prune()

    def _prune(self) -> None:
        """Forget what can no longer matter: used passes past their time, old passages."""
        self.core.replay.prune()
        if self.link is not None:
            self._command_replay.prune()
        window = max(self.cfg.policy.anti_passback_s, PASSBACK_KEEP_S)
        self.core.passback.prune(window)


def _fire_input(cfg: Config) -> str:
    """The fire-alarm input as the journal names it."""
    pin = cfg.gpio.fire_alarm
    return f"fire-alarm contact on GPIO{pin}" if pin >= 0 else "fire-alarm input"


def _last_occupancy(store: EventStore) -> tuple[int, float] | None:
    """(occupancy, when) of the newest event that carries one, so a restart keeps counting."""
    for event in reversed(store.events(after_seq=max(0, store.last_seq - 1000))):
        if isinstance(event.get("occupancy"), int):
            try:
                return event["occupancy"], parse_time(event["ts"])
            except (KeyError, TypeError, ValueError):
                return event["occupancy"], float("-inf")
    return None


def _restored_occupancy(store: EventStore, policy: VenuePolicy, now: float) -> int:
    """The recorded occupancy, unless the venue closed since it was recorded: a kiosk that was
    off overnight starts the new day at 0, as a running one does at opening time."""
    last = _last_occupancy(store)
    if last is None:
        return 0
    occupancy, at = last
    if occupancy and policy.hours and _closed_between(policy, at, now):
        log.info("occupancy %d is from before closing time; the new day starts at 0", occupancy)
        return 0
    return occupancy


def _closed_between(policy: VenuePolicy, start: float, end: float) -> bool:
    """Whether the venue was closed at some minute between ``start`` and ``end``."""
    if end - start > RESTORE_LOOKBACK_S:
        return True  # a week or more ago: some night lies in between
    t = max(start, end - RESTORE_LOOKBACK_S)
    while t < end:
        if not policy.is_open(t):
            return True
        t += 60.0
    return False  # closed only now: the controller resets the count at opening time


def build_link(cfg: Config) -> MqttLink:
    """The fleet link from the [mqtt] section."""
    m = cfg.mqtt
    return MqttLink(
        brokers=list(m.brokers),
        client_id=m.client_id or f"kiosk-{cfg.kiosk.id}",
        kiosk_id=cfg.kiosk.id,
        prefix=m.prefix,
        username=m.username,
        password=reveal(cfg.mqtt_password),
        ca_file=m.ca_file,
        client_cert=m.client_cert,
        client_key=m.client_key,
        keepalive_s=m.keepalive_s,
    )


def _operator_keys(cfg: Config) -> KeySet:
    """The operator key set; without one every remote command is refused (untrusted_key)."""
    if not cfg.operators.keys_file:
        log.warning("no [operators] keys_file: remote commands will all be refused")
        return KeySet({}, source="none")
    try:
        return KeySet.load(cfg.operators.keys_file)
    except KioskError as exc:
        # The gate still works; only remote commands cannot be verified (untrusted_key).
        log.error("operator keys unusable, remote commands will all be refused: %s", exc)
        return KeySet({}, source="none")
