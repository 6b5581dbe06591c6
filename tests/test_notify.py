"""The sd_notify protocol against a socket the test owns; watchdog pings from the loop."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from kiosk.config import load_config
from kiosk.daemon import Daemon
from kiosk.gate.inputs import Command
from kiosk.notify import Notifier, WatchdogPinger
from simulators.world import World
from support import write_config


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield sock, str(path)
    sock.close()


def messages(sock, until: str, timeout: float = 10.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            break
        if until in got:
            break
    return got


def test_notifier_sends_to_the_socket(notify_socket):
    sock, path = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert n.enabled and n.watchdog_s == 2.0
    n.ready("deciding")
    assert sock.recv(100).decode() == "READY=1\nSTATUS=deciding"
    n.watchdog()
    assert sock.recv(100) == b"WATCHDOG=1"


def test_without_a_socket_nothing_happens():
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    n.ready()
    n.watchdog()


def test_watchdog_for_another_pid_is_not_ours():
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None


def test_pinger_pings_at_most_twice_per_interval_and_only_while_alive(notify_socket):
    sock, path = notify_socket
    now = [0.0]
    alive = [True]
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    pinger = WatchdogPinger(n, alive=lambda: alive[0], now=lambda: now[0])
    for _ in range(10):  # ten loop turns within 0.1 s: one ping
        pinger.beat()
        now[0] += 0.01
    now[0] = 0.6
    pinger.beat()
    alive[0] = False
    now[0] = 1.2
    pinger.beat()
    sock.settimeout(0.2)
    got = []
    try:
        while True:
            got.append(sock.recv(100))
    except TimeoutError:
        pass
    assert got == [b"WATCHDOG=1", b"WATCHDOG=1"]


def test_daemon_sends_ready_then_pings_that_stop_when_the_loop_hangs(tmp_path, notify_socket):
    sock, path = notify_socket
    cfg = load_config(write_config(tmp_path, None, gpio={"pin_factory": "mock"}))
    world = World(cfg)
    cfg = world.simulated(cfg, state_dir=tmp_path / "state")
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    daemon = Daemon(cfg, sim=world.hardware(), notifier=notifier)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        got = messages(sock, "WATCHDOG=1")
        assert got[0] == "READY=1" and "WATCHDOG=1" in got
        # Hang the controller loop inside a command's completion callback.
        hang, hanging = threading.Event(), threading.Event()

        def stuck(ok, error):
            hanging.set()
            hang.wait(30)

        daemon.controller.emit(Command("lockdown", done=stuck))
        assert hanging.wait(10)
        messages(sock, "never", timeout=0.3)  # drain pings sent before the hang
        assert "WATCHDOG=1" not in messages(sock, "WATCHDOG=1", timeout=1.0)
        hang.set()
        assert "WATCHDOG=1" in messages(sock, "WATCHDOG=1")
    finally:
        hang.set()
        daemon.stop()
        runner.join(15)
        world.close()
    assert "STOPPING=1" in messages(sock, "STOPPING=1")
