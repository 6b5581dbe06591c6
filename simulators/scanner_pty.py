"""A simulated USB barcode scanner on a real pseudo-terminal.

The kiosk's real `drivers.scanner.SerialScanner` opens the simulator's ``path`` exactly as it
would open ``/dev/ttyACM0``: the simulation stands at the device boundary (DEVELOPERS.md
principle 1). ``path`` is a symlink in ``folder`` re-pointed at each replug, like a udev
``SYMLINK+=`` rule, so the configured port stays the same across unplug and replug.

What an unplug looks like on Linux: closing the pty master hangs up the slave and removes its
``/dev/pts/N`` node. The slave side's reads then return no data although ``select`` reports
it readable, which pyserial turns into ``SerialException("device reports readiness to read
but returned no data ...")``; ``in_waiting`` fails with ``OSError(EIO)``. Bytes not yet
read at the unplug are lost, as with a real USB device.
"""

from __future__ import annotations

import os
import select
import shutil
import tempfile
import threading
import time
import tty
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from kiosk.errors import DeviceError

__all__ = ["BYTES_PER_S", "Happening", "PtyScanner"]

BYTES_PER_S = 960
"""A 9600-baud line with 8N1 framing: what ``chunked`` scans pace themselves to."""

WRITE_TIMEOUT_S = 10.0
"""How long a write may wait for the host to drain the pty before it is given up."""


class Happening(NamedTuple):
    """One entry of `PtyScanner.timeline`. Only the size of what was sent, never its text."""

    t: float
    """``time.monotonic()`` when it happened (for a write: when the last byte went out)."""
    event: str
    """``"scan"``, ``"raw"``, ``"unplug"`` or ``"replug"``."""
    nbytes: int = 0
    """For ``scan``: the code's length without the ending; for ``raw``: bytes sent."""


class PtyScanner:
    """A USB scanner on a pseudo-terminal, reachable at the stable path `path`.

    It is plugged in when built. Without ``folder`` the symlink lives in a temporary
    folder removed by `close`.
    """

    def __init__(self, folder: Path | None = None, name: str = "ttySIM0") -> None:
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="pty-scanner-")) if folder is None else folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / name
        """The stable port path to configure in the kiosk (a symlink to the current pty)."""
        self.timeline: list[Happening] = []
        self._lock = threading.Lock()  # one writer at a time, as on a real wire
        self._master: int | None = None
        self._slave: int | None = None
        self._device: str | None = None
        self._closed = False
        self._plug()

    # -- the device ----------------------------------------------------------------------

    @property
    def device(self) -> str | None:
        """The current slave device (``/dev/pts/N``), or None while unplugged."""
        return self._device

    @property
    def plugged(self) -> bool:
        """Whether the scanner is plugged in."""
        return self._master is not None

    def scan(
        self,
        text: str | bytes,
        ending: bytes = b"\r\n",
        *,
        chunked: bool = False,
        chunk_bytes: int = 3,
    ) -> None:
        """Send one code as a scanner does: the code, then ``ending``.

        With ``chunked`` the bytes go out ``chunk_bytes`` at a time, paced like a 9600-baud
        device, so the host sees the code arrive in several reads.
        """
        data = text.encode() if isinstance(text, str) else bytes(text)
        self._send(data + ending, chunk_bytes if chunked else 0)
        self._record("scan", len(data))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are: noise, half a code, a stuck scanner's endless line."""
        self._send(bytes(data), 0)
        self._record("raw", len(data))

    def unplug(self) -> None:
        """Pull the cable: the pty goes away and the symlink is removed. No-op if unplugged."""
        with self._lock:
            if self._master is None:
                return
            self._unplug()
        self._record("unplug")

    def replug(self) -> None:
        """Plug the cable back in: a new pty behind the same `path`. No-op if plugged."""
        with self._lock:
            if self._closed:
                raise DeviceError("simulated scanner is closed")
            if self._master is not None:
                return
            self._plug()
        self._record("replug")

    def close(self) -> None:
        """Unplug for good and remove the temporary folder if this scanner made it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._unplug()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PtyScanner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = os.openpty()
        # Raw mode, so that the line discipline neither turns CR into LF nor eats bytes
        # such as XON/XOFF or ^C: the host must see exactly what the scanner sent.
        tty.setraw(slave)
        # The simulator keeps the slave open: the device exists whether or not the host has
        # opened it, and its settings stay put between the host's opens.
        os.set_blocking(master, False)
        device = os.ttyname(slave)
        # Re-point atomically, so the host never sees a symlink to a half-made device.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(device)
        os.replace(tmp, self.path)
        self._master, self._slave, self._device = master, slave, device

    def _unplug(self) -> None:
        # The symlink goes first: a host retrying its open must not find a dying device.
        try:
            if self.path.is_symlink():
                self.path.unlink()
        except FileNotFoundError:
            pass
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = self._device = None

    def _send(self, data: bytes, chunk_bytes: int) -> None:
        with self._lock:
            if self._master is None:
                raise DeviceError("simulated scanner is unplugged")
            if chunk_bytes <= 0:
                self._write_all(self._master, data)
                return
            for i in range(0, len(data), chunk_bytes):
                chunk = data[i : i + chunk_bytes]
                self._write_all(self._master, chunk)
                time.sleep(len(chunk) / BYTES_PER_S)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        """Write everything, waiting while the host drains the pty's small buffer."""
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the host is not reading the simulated scanner")
                select.select([], [fd], [], min(left, 0.1))

    def _record(self, event: str, nbytes: int = 0) -> None:
        self.timeline.append(Happening(time.monotonic(), event, nbytes))
