"""SIGHUP (`systemctl reload`) reads the configuration again, as the reload_config command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.core import EVENTS_DB
from kiosk.fleet.reload import install_reload_handler
from kiosk.gate.inputs import Command
from kiosk.store import EventStore
from mqtt_support import wait_until
from support import write_config


def test_sighup_emits_reload_config_from_another_thread() -> None:
    got: list[tuple[Command, str]] = []
    previous = signal.getsignal(signal.SIGHUP)
    try:
        install_reload_handler(lambda cmd: got.append((cmd, threading.current_thread().name)))
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: got, what="the reload command")
    finally:
        signal.signal(signal.SIGHUP, previous)
    (cmd, thread), *_ = got
    assert (cmd.cmd, cmd.origin, cmd.jti) == ("reload_config", "sighup", None)
    assert thread == "sighup-reload"  # never on the signalled thread, which may hold a lock


class Daemon:
    """`kiosk run` in a subprocess, its output collected line by line."""

    def __init__(self, cfg: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "run", "--config", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def said(self, words: str) -> bool:
        return any(words in line for line in self.lines)


def commands(store_path: Path) -> list[dict]:
    if not store_path.exists():
        return []
    with EventStore(store_path, kiosk_id="k1", venue_id="v1", clock=SystemClock()) as s:
        return [e for e in s.events() if e["type"] == "command"]


def test_the_daemon_reloads_kiosk_d_on_sighup(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, None, gpio={"pin_factory": "mock", "fire_alarm": -1})
    gate = tmp_path / "kiosk.d" / "20-gate.toml"
    gate.parent.mkdir()
    gate.write_text("[policy]\ncapacity = 10\n")
    store_path = tmp_path / "state" / EVENTS_DB
    daemon = Daemon(cfg)
    try:
        # The signal handlers are installed before the controller starts deciding.
        wait_until(lambda: daemon.said("deciding codes"), timeout=60, what="the daemon")
        gate.write_text("[policy]\ncapacity = = 5\n")  # broken: refused, the old policy stays
        daemon.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: commands(store_path), what="the refused reload")
        gate.write_text("[policy]\ncapacity = 5\n")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(commands(store_path)) == 2, what="the second reload")
        wait_until(lambda: daemon.said("new venue policy takes effect"), what="its journal line")
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.proc.kill()
    refused, accepted = commands(store_path)
    assert (refused["cmd"], refused["origin"], refused["ok"]) == ("reload_config", "sighup", False)
    assert refused["error"] == "config_error"
    assert (accepted["origin"], accepted["ok"]) == ("sighup", True)
    daemon.reader.join(30)  # the whole output, to its end
    # The refusal's journal line names the broken file.
    assert daemon.said(f"{gate}: not valid TOML"), daemon.lines
