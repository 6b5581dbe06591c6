"""A mosquitto broker started by a simulator: its own process on a free loopback port.

The fleet simulation's ``--start-broker`` mode uses it so that one command runs the whole
measurement. Persistence lives in the given folder, so a clean stop and start on the same
port keeps persistent sessions (the fleet observer's) and their queued messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from kiosk.errors import KioskError

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class BrokerError(KioskError):
    """mosquitto is missing, refused its configuration, or did not start listening."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One mosquitto process. ``url`` is ``mqtt://127.0.0.1:PORT``; the port survives restarts.

    ``extra_conf`` is appended to the generated configuration (mosquitto takes the last value
    of a repeated option).
    """

    def __init__(self, folder: Path, *, port: int | None = None, extra_conf: str = "") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.folder}/",
            # Only the observer's session is persistent; a clean stop saves it anyway, so
            # periodic saves would only add broker CPU to the measurement.
            "autosave_interval 600",
            # An observer that falls behind must not have QoS 1 events dropped by the broker:
            # that would count as a loss of the kiosk code under test.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            # A lookup is one small packet each way: send it at once, not after a delayed ACK.
            "set_tcp_nodelay true",
            f"log_dest file {self.folder}/mosquitto.log",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to user mosquitto, who may not write the folder:
            # persistence across a restart would silently be lost.
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n" + extra_conf)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id while running (for CPU accounting), else None."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, timeout: float = 10.0) -> Broker:
        """Start and wait until it accepts connections; BrokerError if it does not."""
        if not Path(MOSQUITTO).exists():
            raise BrokerError(f"mosquitto not found (looked for {MOSQUITTO})")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    self.proc = None
                    raise BrokerError(
                        f"mosquitto exited at start; see {self.folder / 'mosquitto.log'}"
                    ) from None
                time.sleep(0.05)
        self.kill()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout:g} s")

    def stop(self) -> None:
        """A clean stop (SIGTERM): the broker saves its persistence."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """A crash (SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
