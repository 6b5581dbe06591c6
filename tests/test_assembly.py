"""kiosk/assembly.py: one builder for every kiosk; run and stop take it apart safely."""

from __future__ import annotations

import threading
import time

from kiosk.assembly import RecordTap, build_kiosk
from kiosk.config import load_config
from kiosk.gate.inputs import CodeRead
from kiosk.reasons import Source
from kiosk.wiring import SimHardware
from simulators.turnstile import SimPinFactory, TurnstileModel
from support import wait_until, write_config


def test_one_builder_runs_the_gate_reports_health_and_releases_the_relay(tmp_path):
    cfg = load_config(write_config(tmp_path, None, gpio={"pin_factory": "mock"}))
    factory = SimPinFactory()
    model = TurnstileModel.for_config(factory, cfg.gpio, cfg.gate)  # the contact is closed
    far_ends = SimHardware(pin_factory=factory, clock_synchronised=lambda: True)
    kiosk = build_kiosk(cfg, far_ends=far_ends)
    relay = factory.sim_pin(cfg.gpio.relay)
    assert [s for _, s in relay.states] == [0]  # released as it was built
    assert kiosk.link is None and kiosk.outbox is None and kiosk.commands is None
    events: list[dict] = []
    kiosk.view.subscribe(RecordTap(events.append))
    runner = threading.Thread(target=kiosk.run)
    runner.start()
    try:
        wait_until(lambda: any(e["type"] == "mode" for e in events), what="the first mode")
        kiosk.controller.emit(CodeRead(b"not a code", Source.SCANNER, time.monotonic()))
        wait_until(lambda: any(e["type"] == "decision" for e in events), what="a decision")
        snap = kiosk.view.snapshot()
        assert snap.health["clock"] == "ok" and snap.clock_trusted
        assert snap.health["disk"] == "ok" and snap.health["broker"] == "off"
        assert snap.last_decision is not None and snap.last_decision.reason == "invalid_payload"
    finally:
        kiosk.stop()
        runner.join(10)
        model.close()
    assert not runner.is_alive()
    assert [s for _, s in relay.states][-1] == 0
    assert kiosk.hardware.turnstile_released


def test_an_untrusted_clock_reaches_the_view(tmp_path):
    cfg = load_config(write_config(tmp_path, None, gpio={"pin_factory": "mock"}))
    far_ends = SimHardware(pin_factory=SimPinFactory(), clock_synchronised=lambda: False)
    kiosk = build_kiosk(cfg, far_ends=far_ends)
    try:
        kiosk.report_health()
        snap = kiosk.view.snapshot()
        assert snap.health["clock"] == "down" and not snap.clock_trusted
    finally:
        kiosk.close()


def test_fitted_devices_start_ok_and_what_is_not_fitted_is_off(tmp_path):
    """mqtt.md health: `off` is "not configured"; a fitted camera or scanner is `ok` until
    its driver says it is lost, and the relay is `ok` once built."""
    from simulators.scanner_pty import PtyScanner

    cfg = load_config(
        write_config(
            tmp_path, None, gpio={"pin_factory": "mock"}, scanner={"enabled": True, "url": "sim:"}
        )
    )
    pty = PtyScanner(tmp_path)
    far_ends = SimHardware(
        pin_factory=SimPinFactory(),
        serial_ports={"default": str(pty.path)},
        clock_synchronised=lambda: True,
    )
    kiosk = build_kiosk(cfg, far_ends=far_ends)
    try:
        health = kiosk.view.snapshot().health
        assert (health["relay"], health["scanner"], health["camera"]) == ("ok", "ok", "off")
    finally:
        kiosk.close()
        pty.close()
