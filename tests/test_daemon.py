"""`kiosk run`: the daemon starts safe, records, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from kiosk.clock import SystemClock
from kiosk.config import load_config
from kiosk.core import EVENTS_DB
from kiosk.daemon import Daemon
from kiosk.store import EventStore
from simulators.scanner_pty import PtyScanner
from simulators.world import World
from support import write_config


def test_config_error_exits_78(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[kiosk]\nid = 'x'\n[gpio]\nrelay = 99\n")
    run = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 78
    assert "[gpio] relay: 99 is above the maximum 53" in run.stderr


def test_runs_records_and_stops_on_sigterm(tmp_path, population):
    with PtyScanner(tmp_path) as scanner:
        cfg = write_config(
            tmp_path,
            None,
            gpio={"pin_factory": "mock", "fire_alarm": -1},
            scanner={"enabled": True, "url": str(scanner.path)},
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "run", "--config", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            store_path = tmp_path / "state" / EVENTS_DB
            iin = next(p for p in population.people if p.sub.startswith("iin:")).sub[4:]
            deadline = time.monotonic() + 60
            decided = False
            while time.monotonic() < deadline and not decided:
                time.sleep(0.5)
                scanner.scan(iin)  # scanned again until the daemon is up and has decided
                if store_path.exists():
                    with EventStore(
                        store_path, kiosk_id="k1", venue_id="v1", clock=SystemClock()
                    ) as s:
                        decided = any(e["type"] == "decision" for e in s.events())
            assert decided
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert "relay released" in out
    assert iin not in out  # never an ID in the log
    with EventStore(store_path, kiosk_id="k1", venue_id="v1", clock=SystemClock()) as s:
        events = s.events()
    decision = next(e for e in events if e["type"] == "decision")
    # No status service configured: a bare IIN counts as no answer (offline rule "refer").
    assert (decision["decision"], decision["reason"], decision["source"]) == (
        "refer",
        "backend_unavailable",
        "scanner",
    )


def test_relay_stays_released_through_start_and_stop(tmp_path):
    cfg = load_config(write_config(tmp_path, None, gpio={"pin_factory": "mock"}))
    world = World(cfg)
    try:
        cfg = world.simulated(cfg, state_dir=tmp_path / "state")
        daemon = Daemon(cfg, sim=world.hardware())
        relay = world.pins.sim_pin(cfg.gpio.relay)
        runner = threading.Thread(target=daemon.run)
        runner.start()
        time.sleep(0.5)
        daemon.stop()
        runner.join(10)
        assert not runner.is_alive()
        assert [state for _, state in relay.states] == [0]
        assert world.turnstile.count("relay_free") == 0
    finally:
        world.close()


def test_a_lockdown_survives_a_restart(tmp_path):
    from kiosk.events import Command

    cfg = load_config(write_config(tmp_path, None, gpio={"pin_factory": "mock"}))
    for round_ in range(2):
        world = World(cfg)
        try:
            cfg = world.simulated(cfg, state_dir=tmp_path / "state")
            daemon = Daemon(cfg, sim=world.hardware())
            runner = threading.Thread(target=daemon.run)
            runner.start()
            if round_ == 0:
                done = threading.Event()
                daemon.controller.emit(Command("lockdown", done=lambda ok, err, d=done: d.set()))
                assert done.wait(10)
            else:
                deadline = time.monotonic() + 10
                while daemon.controller.mode != "lockdown" and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert daemon.controller.mode == "lockdown"  # until an operator resumes
            daemon.stop()
            runner.join(10)
        finally:
            world.close()
