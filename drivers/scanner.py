"""The serial/USB barcode scanner of a turnstile kiosk: lines of bytes in, `CodeRead` events out.

A scanner in USB-CDC or RS-232 mode sends each code followed by CR, LF or CRLF. The driver
frames those lines (`LineFramer`, pure and thread-free) and hands the raw bytes to the
controller. It never decodes or judges them: non-UTF-8, binary noise and oversized text are
the core's to refuse with ``invalid_payload`` (credentials.md). The driver's own duties are
to never crash, never grow memory on a flood, and survive unplug and replug.

Ports are pyserial URLs: ``/dev/ttyACM0``, a udev symlink such as ``/dev/scanner``,
``socket://host:port`` or ``loop://`` (tests).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass

import serial

from kiosk.errors import DeviceError
from kiosk.gate.inputs import CodeRead, DeviceStatus, Emit, Event
from kiosk.liveness import Liveness
from kiosk.reasons import Source

__all__ = ["LineFramer", "ScannerStats", "SerialScanner"]

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.1
"""First retry delay after a lost or absent port; doubles up to ``reconnect_max_s``."""

READ_TIMEOUT_S = 0.05
"""Serial read timeout: bounds how long `SerialScanner.stop` waits for the reader thread."""

READ_CHUNK = 4096
"""Most bytes taken in one read after the first byte of a burst arrived."""

PATH_CHECK_S = 0.5
"""How often an idle reader checks that a plain device path still exists."""

# Any run of CR and LF ends a line. Runs longer than one ending only hold empty lines, which
# are ignored, so CRLF (even split across two reads) needs no state of its own.
_ENDINGS = re.compile(rb"[\r\n]+")


class LineFramer:
    """Cuts a byte stream into lines ended by CR, LF or CRLF, with a bound on line length.

    ``feed`` returns the lines completed by ``data``, each with the time ``t`` at which its
    ending (or its cut) arrived. A line longer than ``max_line_bytes`` is emitted once, cut to
    ``max_line_bytes``, and the rest of it is dropped up to the next ending: a stuck scanner or
    a noise flood costs at most ``max_line_bytes`` of memory.
    """

    def __init__(self, max_line_bytes: int = 4096) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.max_line_bytes = max_line_bytes
        self.overlong = 0
        """How many lines were cut."""
        self._buf = bytearray()
        self._discarding = False

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished line are held."""
        return len(self._buf)

    def feed(self, data: bytes, t: float) -> list[tuple[bytes, float]]:
        """Take the next bytes read; return the lines they complete as ``(line, t)``."""
        out: list[tuple[bytes, float]] = []
        for i, piece in enumerate(_ENDINGS.split(data)):
            if i > 0:  # an ending came before this piece
                self._end_line(t, out)
            if piece:
                self._take(piece, t, out)
        return out

    def reset(self) -> None:
        """Forget any unfinished line (the device was lost mid-line)."""
        self._buf.clear()
        self._discarding = False

    def _take(self, piece: bytes, t: float, out: list[tuple[bytes, float]]) -> None:
        if self._discarding:
            return
        room = self.max_line_bytes - len(self._buf)
        if len(piece) <= room:
            self._buf += piece
            return
        # One byte past the limit proves the line is overlong: hand over what fits, once.
        self._buf += piece[:room]
        out.append((bytes(self._buf), t))
        self._buf.clear()
        self._discarding = True
        self.overlong += 1

    def _end_line(self, t: float, out: list[tuple[bytes, float]]) -> None:
        if self._discarding:
            self._discarding = False  # the tail of a cut line ends here; nothing to emit
        elif self._buf:
            out.append((bytes(self._buf), t))
            self._buf.clear()


@dataclass
class ScannerStats:
    """What a `SerialScanner` has seen since it was built."""

    lines: int = 0
    """Lines emitted as `CodeRead` (cut lines included)."""
    overlong: int = 0
    """Lines longer than ``max_line_bytes`` that were cut."""
    reconnects: int = 0
    """Times the port came back after being lost or absent."""
    bytes: int = 0
    """Bytes read from the port."""


class _PortLost(Exception):
    """The open port stopped working; ``str(self)`` is the detail for `DeviceStatus`."""


class SerialScanner:
    """A serial or USB-CDC barcode scanner (implements `kiosk.devices.InputDevice`).

    ``start`` runs a reader thread that emits one `CodeRead` per line, with the raw bytes.
    When the port is absent or lost it emits ``DeviceStatus(name, False, detail)`` once,
    retries with exponential back-off from 0.1 s to ``reconnect_max_s``, and emits
    ``DeviceStatus(name, True, "back")`` when the port opens again. The first successful
    open emits nothing: a scanner is assumed present until shown otherwise.

    ``max_line_bytes`` must exceed the core's size limit (2048 bytes) so that a cut line is
    refused for its size rather than read as a shorter code.
    """

    def __init__(
        self,
        url: str,
        *,
        baud: int = 9600,
        reconnect_max_s: float = 5.0,
        max_line_bytes: int = 4096,
        name: str = "scanner",
        liveness: Liveness | None = None,
    ) -> None:
        if reconnect_max_s < RECONNECT_MIN_S:
            raise ValueError(f"reconnect_max_s must be at least {RECONNECT_MIN_S}")
        self.url = url
        self.baud = baud
        self.reconnect_max_s = reconnect_max_s
        self.name = name
        self.stats = ScannerStats()
        self._liveness = liveness or Liveness()
        self._framer = LineFramer(max_line_bytes)
        # Only plain device paths can vanish from the file system; URLs are checked by reads.
        self._path = None if "://" in url else url
        self._emit: Emit | None = None
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()

    # -- InputDevice ---------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Start the reader thread. Never raises for a missing port (it is retried).

        Raises `DeviceError` for a URL or baud rate pyserial cannot use at all, and if the
        scanner is already running.
        """
        if self._thread is not None and self._thread.is_alive():
            raise DeviceError(f"{self.name}: already started")
        try:
            # Builds without opening: checks the URL scheme and the baud rate up front, so a
            # configuration mistake is an error now instead of an endless retry loop.
            serial.serial_for_url(
                self.url, baudrate=self.baud, timeout=READ_TIMEOUT_S, do_not_open=True
            )
        except ValueError as exc:
            raise DeviceError(f"{self.name}: cannot use port {self.url!r}: {exc}") from exc
        self._emit = emit
        self._stop = threading.Event()
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name=f"{self.name}-reader", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader thread (within about a second) and close the port."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1.5)
            if thread.is_alive():
                # Stuck in a driver call: closing the port makes that call fail and return.
                self._close_port()
                thread.join(timeout=1.0)
        self._close_port()

    # -- inspection ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> serial.SerialBase | None:
        """The open pyserial port, or None (for ``loop://`` tests and diagnostics)."""
        return self._port

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the port is open and being read; False if ``timeout`` passed first."""
        return self._ready.wait(timeout)

    # -- reader thread -------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        delay = RECONNECT_MIN_S
        down = False  # whether DeviceStatus(False) was emitted and not yet answered
        while not stop.is_set():
            self._liveness.beat(self.name, delay + 10.0)
            try:
                port = serial.serial_for_url(
                    self.url, baudrate=self.baud, timeout=READ_TIMEOUT_S, do_not_open=False
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                if not down:
                    down = True
                    self._went_down("absent", exc)
                else:
                    log.debug("%s: still absent (%s)", self.name, type(exc).__name__)
                stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            self._port = port
            if stop.is_set():  # stop() may have run while we were opening
                break
            delay = RECONNECT_MIN_S
            if down:
                down = False
                self.stats.reconnects += 1
                # The gate's journal says "scanner back" (kiosk/journal.py): one line, not two.
                log.debug("%s: port back", self.name)
                self._send(DeviceStatus(self.name, True, "back"))
            self._ready.set()
            try:
                self._read_until_lost(port, stop)
            except _PortLost as exc:
                if stop.is_set():
                    break  # closed by stop(): not an unplug
                down = True
                self._went_down("lost", exc)
                stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max_s)
        self._ready.clear()
        self._close_port()
        self._liveness.forget(self.name)

    def _read_until_lost(self, port: serial.SerialBase, stop: threading.Event) -> None:
        """Read and emit lines until ``stop`` is set; raise `_PortLost` if the port fails."""
        last_check = time.monotonic()
        while not stop.is_set():
            self._liveness.beat(self.name, 10.0)  # reads time out every 50 ms
            try:
                # One byte returns as soon as a burst starts; the rest of it is already there.
                data = port.read(1)
                if data:
                    waiting = int(getattr(port, "in_waiting", 0))  # every URL handler has it
                    if waiting:
                        data += port.read(min(waiting, READ_CHUNK))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's own bug when the port is closed under
                # a read (fd set to None); the port is gone either way.
                raise _PortLost(_describe(exc)) from exc
            now = time.monotonic()
            if not data:
                # An idle port whose path vanished may never fail a read on some adapters.
                if self._path is not None and now - last_check >= PATH_CHECK_S:
                    last_check = now
                    if not os.path.exists(self._path):
                        raise _PortLost("port path vanished")
                continue
            self.stats.bytes += len(data)
            for line, t in self._framer.feed(data, now):
                self.stats.lines += 1
                self._send(CodeRead(line, Source.SCANNER, t))
            self.stats.overlong = self._framer.overlong

    def _went_down(self, kind: str, exc: BaseException) -> None:
        """The port is absent or lost: tell the controller once, log once, drop the line."""
        self._ready.clear()
        self._close_port()
        self._framer.reset()  # a half line from before the unplug is no code
        detail = f"{kind}: {exc if isinstance(exc, _PortLost) else _describe(exc)}"
        # The detail names the port and the failure, never the bytes read.
        # The journal's "scanner lost" line is the controller's; this one is for debugging.
        log.debug("%s: port %s %s; retrying", self.name, self.url, detail)
        self._send(DeviceStatus(self.name, False, detail))

    def _send(self, event: Event) -> None:
        emit = self._emit
        if emit is None:
            return
        try:
            emit(event)
        except Exception as exc:  # noqa: BLE001 - the reader must outlive a faulty consumer
            # Only the type: the message of a failed CodeRead could quote the code.
            log.error("%s: emit failed (%s)", self.name, type(exc).__name__)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # noqa: BLE001 - closing a vanished device may fail; it is gone anyway
                log.debug("%s: close failed (%s)", self.name, type(exc).__name__)


def _describe(exc: BaseException) -> str:
    """A short, data-free description of a port failure for logs and `DeviceStatus`."""
    errno = getattr(exc, "errno", None)
    text = str(exc).strip() or type(exc).__name__
    if errno is not None and str(errno) not in text:
        text = f"{text} (errno {errno})"
    return text[:160]
