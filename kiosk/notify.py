"""systemd's notify protocol (sd_notify(3)): READY, STATUS, STOPPING and WATCHDOG pings.

Written by hand because it is one datagram; without NOTIFY_SOCKET every call does nothing,
so the daemon runs the same under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable


class Notifier:
    """Sends notifications to the socket systemd named in ``NOTIFY_SOCKET``."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address or None
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_s: float | None = int(usec) / 1e6 if watched else None

    @property
    def enabled(self) -> bool:
        """Whether a notify socket was given."""
        return self._address is not None

    def send(self, *fields: str) -> None:
        """Send ``KEY=value`` lines as one datagram; errors are ignored (systemd may be gone)."""
        if self._address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError:
            pass

    def ready(self, status: str = "") -> None:
        """The kiosk is up: hardware, stores and status link."""
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        """A one-line status for `systemctl status`."""
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        """The kiosk is shutting down."""
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """One watchdog ping."""
        self.send("WATCHDOG=1")


class WatchdogPinger:
    """Pings the watchdog from the controller loop's heartbeat, at most twice per interval,
    and only while every watched loop has shown progress recently.

    The pings come from the loop itself: a hung controller stops calling ``beat`` and a hung
    camera or scanner loop stops its progress clock, so systemd restarts the daemon.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        alive: Callable[[], bool] = lambda: True,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self._alive = alive
        self._now = now
        interval = notifier.watchdog_s
        self._every = interval / 2 if interval else None
        self._last = float("-inf")

    def beat(self) -> None:
        """Called by the controller on every loop turn."""
        if self._every is None:
            return
        now = self._now()
        if now - self._last >= self._every and self._alive():
            self._notifier.watchdog()
            self._last = now
