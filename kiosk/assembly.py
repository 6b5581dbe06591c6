"""The one composition root: ``build_kiosk(config, far_ends=...)`` builds every part of a
kiosk (DEVELOPERS.md, Where things live), and the :class:`Kiosk` it returns starts, runs and
stops them. The daemon (`kiosk run`), the simulation and the tests' gate rig all build here;
only the far ends (``SimHardware``: mock pins, frame sources, pseudo-terminals) differ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from kiosk import __version__
from kiosk.clock import Clock, SystemClock
from kiosk.clockguard import HWM_FILE, ClockGuard, kernel_clock_synchronised
from kiosk.config import Config, load_config
from kiosk.core import EVENTS_DB, Core, build_core
from kiosk.errors import KioskError
from kiosk.fleet.commands import CommandReceiver
from kiosk.fleet.discovery import HomeAssistantDiscovery
from kiosk.fleet.link import MqttLink
from kiosk.fleet.outbox import Outbox
from kiosk.fleet.state import StatePublisher
from kiosk.gate.controller import GateController
from kiosk.gate.inputs import Stop
from kiosk.gate.parts import GateTiming, Heartbeat, Restored
from kiosk.gate.records import StoreRecorder
from kiosk.gate.restore import restored_occupancy
from kiosk.gate.view import DOWN, OK, GateSnapshot, GateView
from kiosk.journal import GateJournal, fire_input_name
from kiosk.jwks import KeySet
from kiosk.liveness import Liveness
from kiosk.metrics import Metrics, TimedLookup
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
HWM_SAVE_S = 600.0  # the SD card is written rarely; a restart loses at most this much


class RecordTap:
    """A view observer handing every record to a function (the simulation's ``on_event``)."""

    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._fn = fn

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        pass

    def recorded(self, event: Mapping[str, Any]) -> None:
        self._fn(dict(event))


class _CoreMemory:
    """The gate memory of kiosk/core.py: replay marks and anti-passback passages."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def mark_used(self, jti: str, until: float) -> None:
        self._core.replay.mark_used(jti, until)

    def record_passage(self, subject: str, at: float) -> None:
        self._core.passback.record_passage(subject, at)


class _ConfigPolicy:
    """``reload_config``: the venue policy of the configuration file as it is now."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg

    def load_policy(self) -> VenuePolicy:
        return load_config(self._cfg.path).policy


class Kiosk:
    """Every part of one kiosk, built by :func:`build_kiosk`. ``run`` blocks until ``stop``."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Clock,
        liveness: Liveness,
        hardware: Hardware,
        clock_guard: ClockGuard,
        link: MqttLink | None,
        core: Core,
        store: EventStore,
        outbox: Outbox | None,
        view: GateView,
        controller: GateController,
        state_pub: StatePublisher | None,
        commands: CommandReceiver | None,
        command_replay: ReplayStore | None,
        web: WebFace | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.web = web
        self.metrics = metrics
        self.clock = clock
        self.liveness = liveness
        self.hardware = hardware
        self.clock_guard = clock_guard
        self.link = link
        self.core = core
        self.store = store
        self.outbox = outbox
        self.view = view
        self.controller = controller
        self.state_pub = state_pub
        self.commands = commands
        self._command_replay = command_replay
        self.link_status = "status service not tried"
        self._stopped = threading.Event()
        self._housekeeping_thread = threading.Thread(
            target=self._housekeeping, name="keys", daemon=True
        )

    def start(self) -> None:
        """Start the inputs, the link and the housekeeping (not the controller's loop)."""
        for device in self.hardware.inputs:
            device.start(self.controller.emit)
        if self.link is not None:
            self.link.start()
            assert self.outbox is not None
            self.outbox.start()
        self._try_status_link()
        self._housekeeping_thread.start()
        if self.web is not None:
            self.web.start()  # a port taken or a bad certificate is one journal line, no stop

    def run(self) -> None:
        """Start everything and run the controller in this thread until ``stop``; then close
        every part, the relay first."""
        try:
            self.start()
            self.controller.run()
        finally:
            self.close()

    def stop(self) -> None:
        """Ask the controller to stop (any thread)."""
        self.controller.emit(Stop())

    def close(self) -> None:
        """Take the kiosk apart: each step on its own, one failing must not skip the others."""
        self._stopped.set()
        failed: list[str] = []
        for step in (
            self.hardware.close,  # releases the relay first
            self._stop_web,
            self._stop_link,
            self.clock_guard.save,
            self.store.close,
            self.core.close,
        ):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - any failure while closing: said, the next step runs
                failed.append(step.__qualname__)
                log.error("shutdown: %s failed: %s", step.__qualname__, exc)
        released = "Hardware.close" not in failed and self.hardware.turnstile_released
        log.info("kiosk stopped; %s", "relay released" if released else "RELAY NOT RELEASED")

    def _stop_web(self) -> None:
        if self.web is not None:
            self.web.stop()

    def _stop_link(self) -> None:
        if self.link is None:
            return
        assert self.outbox is not None
        self.outbox.flush(1.0)  # what can go out in a second goes; the rest waits in the store
        self.outbox.stop()
        self.link.stop()  # publishes the offline state (the Will)
        if self._command_replay is not None:
            self._command_replay.close()

    def _try_status_link(self) -> None:
        """Fetch the pass keys once before READY: the link is up, or known to be down."""
        lookup = self.core.lookup
        # The broker carries events and commands whatever asks the status: wait for it once.
        broker_up = self.link.wait_connected(LINK_WAIT_S) if self.link is not None else False
        if isinstance(lookup, HttpStatusClient):
            ok = self.core.keys.refresh(lookup) if self.cfg.passes.refresh_keys else None
            self.link_status = {
                True: "status service reachable",
                False: "status service unreachable, offline rules apply",
                None: "status service configured",
            }[ok]
        elif isinstance(lookup, MqttStatusClient):
            self.link_status = (
                "broker connected" if broker_up else "broker unreachable, offline rules apply"
            )
        elif lookup is None:
            self.link_status = "no status service configured"
        if self.clock_guard.problem():
            self.link_status += "; clock not trusted"
        self.report_health()

    def report_health(self) -> None:
        """Tell the view what the controller does not know: the clock's trust (the
        ClockGuard), the broker (the link), the outbox's backlog. Called before READY and on
        every housekeeping turn (so at most HOUSEKEEPING_S old)."""
        trusted = self.clock_guard.problem() is None
        parts = {"clock": OK if trusted else DOWN}
        backlog = 0
        if self.link is not None and self.outbox is not None:
            parts["broker"] = OK if self.link.connected else DOWN
            backlog = max(0, self.outbox.stats().backlog)
        self.view.publish(clock_trusted=trusted, backlog=backlog, health_parts=parts)

    def _housekeeping(self) -> None:
        """Refresh the pass keys now and then; keep the clock's high-water mark."""
        refresh = self.cfg.passes.refresh_keys and isinstance(self.core.lookup, HttpStatusClient)
        next_keys = time.monotonic() + KEY_REFRESH_S
        next_save = time.monotonic() + HWM_SAVE_S
        while not self._stopped.wait(HOUSEKEEPING_S):
            try:
                self._housekeeping_turn(refresh, next_keys, next_save)
            except Exception as exc:  # noqa: BLE001 - a full disk must not end the housekeeping for good
                log.error("housekeeping failed: %s", exc)
            now = time.monotonic()
            if now >= next_keys:
                next_keys = now + KEY_REFRESH_S
            if now >= next_save:
                next_save = now + HWM_SAVE_S

    def _housekeeping_turn(self, refresh: bool, next_keys: float, next_save: float) -> None:
        self.report_health()  # moves the clock's mark up, says so when the clock jumps
        now = time.monotonic()
        if refresh and now >= next_keys:
            self.core.keys.refresh(self.core.lookup)  # type: ignore[arg-type]
        if now >= next_save:
            self.clock_guard.save()
            self._prune()

    def _prune(self) -> None:
        """Forget what can no longer matter: used passes past their time, old passages."""
        self.core.replay.prune()
        if self._command_replay is not None:
            self._command_replay.prune()
        window = max(self.cfg.policy.anti_passback_s, PASSBACK_KEEP_S)
        self.core.passback.prune(window)


def build_kiosk(
    cfg: Config,
    *,
    far_ends: SimHardware | None = None,
    clock: Clock | None = None,
    heartbeat: Heartbeat | None = None,
    liveness: Liveness | None = None,
    lookup_executor: Executor | None = None,
) -> Kiosk:
    """Build every part of the kiosk from ``cfg``; ``far_ends`` are the simulated ends of the
    devices (None: the real ones). Nothing runs until ``Kiosk.start``/``run``.
    ``lookup_executor`` runs status lookups (default: one worker thread; a fake-clock test
    passes kiosk.gate.lookups.InlineExecutor)."""
    clock = clock or SystemClock()
    liveness = liveness or Liveness()
    # Hardware first: building the board releases the relay before anything else happens.
    hardware = build_hardware(cfg, sim=far_ends, liveness=liveness)
    metrics = Metrics(version=__version__)
    metrics.set_camera_stats(_camera_totals(hardware))
    try:
        synchronised = (far_ends and far_ends.clock_synchronised) or kernel_clock_synchronised
        clock_guard = ClockGuard(
            cfg.state_dir / HWM_FILE,
            clock=clock,
            leeway_s=cfg.kiosk.leeway_s,
            synchronised=synchronised,
        )
        link = build_link(cfg) if cfg.mqtt.enabled else None
        lookup = MqttStatusClient(link) if link and cfg.status.backend == "mqtt" else None
        core = build_core(
            cfg,
            clock=clock,
            persistent=True,
            lookup=lookup,
            clock_trusted=clock_guard.trusted,
            observe_lookup=lambda inner: TimedLookup(inner, metrics, cfg.status.backend),
        )
        store = EventStore(
            cfg.state_dir / EVENTS_DB,
            kiosk_id=cfg.kiosk.id,
            venue_id=cfg.kiosk.venue_id,
            clock=clock,
            max_events=cfg.mqtt.max_events,
        )
    except BaseException:
        hardware.close()
        raise
    outbox = Outbox(store, link, retention_s=cfg.mqtt.retention_s) if link else None
    view = GateView(
        GateSnapshot(capacity=cfg.policy.capacity or None, kiosk_version=__version__),
        now=clock.time,
    )
    view.subscribe(metrics)
    timing = GateTiming.from_config(cfg.gate, cfg.kiosk.leeway_s)
    fire = fire_input_name(cfg.gpio.fire_alarm)
    # The journal hears the controller's notes through the view (the controller knows no journal).
    view.subscribe(GateJournal(fire_input=fire, unlock_s=timing.unlock_s, now=clock.monotonic))
    # The controller's first journal line says so when it restarts in lockdown or emergency.
    last_mode = store.last_mode()
    controller = GateController(
        checker=core.checker,
        recorder=StoreRecorder(store, wake=outbox.wake if outbox else None),
        devices=hardware,
        policy=PolicyHolder(cfg.policy),
        timing=timing,
        clock=clock,
        view=view,
        memory=_CoreMemory(core),
        reload=_ConfigPolicy(cfg),
        heartbeat=heartbeat,
        restored=Restored(
            occupancy=restored_occupancy(store, cfg.policy, clock.time()),
            lockdown=last_mode == "lockdown",
            latched=last_mode == "emergency",
        ),
        lookup_timeout_s=cfg.status.deadline_ms / 1000.0 + LOOKUP_MARGIN_S,
        lookup_executor=lookup_executor,
        version=__version__,
        present=("relay", *(d.name for d in hardware.inputs if d.name in ("camera", "scanner"))),
    )
    state_pub: StatePublisher | None = None
    commands: CommandReceiver | None = None
    command_replay: ReplayStore | None = None
    if link is not None:
        state_pub = StatePublisher(link, initial=view.snapshot())
        view.subscribe(state_pub)
        ha = cfg.homeassistant  # publishes on connect; with it off, removes what it published
        HomeAssistantDiscovery(
            link, enabled=ha.enabled, prefix=ha.prefix, state_dir=cfg.state_dir, version=__version__
        ).start()
        command_replay = ReplayStore(cfg.state_dir / COMMANDS_DB, clock=clock)
        operator_keys = _operator_keys(cfg)
        commands = CommandReceiver(
            link,
            venue_id=cfg.kiosk.venue_id,
            operator_keys=lambda: operator_keys,
            replay=command_replay,
            execute=controller.emit,
            clock=clock,
            leeway_s=cfg.kiosk.leeway_s,
        )
    web = WebFace(
        cfg, view=view, emit=controller.emit, liveness=liveness, metrics=metrics, now=clock.time
    )
    return Kiosk(
        cfg,
        web=web,
        metrics=metrics,
        clock=clock,
        liveness=liveness,
        hardware=hardware,
        clock_guard=clock_guard,
        link=link,
        core=core,
        store=store,
        outbox=outbox,
        view=view,
        controller=controller,
        state_pub=state_pub,
        commands=commands,
        command_replay=command_replay,
    )


def _camera_totals(hardware: Hardware) -> Callable[[], tuple[int, int]] | None:
    """The camera reader's (frames, decodes), for the metrics; None without a camera."""
    camera = next((d for d in hardware.inputs if d.name == "camera"), None)
    if camera is None:
        return None

    def totals() -> tuple[int, int]:
        stats = camera.stats  # type: ignore[attr-defined]  # drivers.camera.CameraReader
        return int(stats.frames_captured), int(stats.frames_decoded)

    return totals


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
