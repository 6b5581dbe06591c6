"""`CameraReader`: turns the frames of a `FrameSource` into `CodeRead` events.

`CameraReader` runs two threads. The capture thread reads frames as the camera delivers them
and keeps only the newest in a one-slot holder; the decode thread takes whatever is newest
when it is free. So a slow decode never builds a queue of old frames: the code decoded is
what the camera saw at most one frame interval before the decode started, and the latency
from a phone appearing to its `CodeRead` is one decode, not a backlog.

The capture thread does not decode: an MJPG camera's JPEG stays compressed until the decode
thread asks for what it needs (`drivers.frames.FrameImages`): a reduced greyscale image for
the motion gate on every frame, the full luminance only for frames the gate lets through.

The reader survives the camera: an unplugged USB camera, an ended stream or file, a library
error all become one `DeviceStatus(ok=False)`, reopen attempts with exponential back-off,
and one `DeviceStatus(ok=True, "back")` when frames flow again. Decoded content is never
logged (codes carry IDs).

The frame sources live in `drivers.sources`; their names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import numpy as np

from drivers.decoder import QrDecoder
from drivers.frames import FrameImages, MjpegFrame
from drivers.motion import IdlePacer, MotionGate
from drivers.sources import FrameSource, OpenCVSource, Picamera2Source, make_source
from kiosk.errors import DeviceError, KioskError
from kiosk.gate.inputs import CodeRead, DeviceStatus, Emit
from kiosk.liveness import Liveness
from kiosk.reasons import Source
from kiosk.throttle import LogThrottle

__all__ = [
    "CameraReader",
    "CameraStats",
    "FrameSource",
    "OpenCVSource",
    "Picamera2Source",
    "make_source",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CameraStats:
    """Counters of a `CameraReader`, for benchmarks and ``kiosk doctor``.

    Every frame captured ends as exactly one of: stale (overwritten by a newer frame before
    the decoder took it), paced (dropped undecoded by the idle pacer), gated (the motion
    gate said idle), decoded, failed (an error while handling it), or still waiting in the
    holder. ``resting`` is whether the idle pacer looks at fewer frames right now.
    """

    frames_captured: int = 0
    frames_stale: int = 0
    frames_paced: int = 0
    frames_gated: int = 0
    frames_decoded: int = 0
    frames_failed: int = 0
    decode_s_total: float = 0.0
    codes_read: int = 0
    reconnects: int = 0
    connected: bool = False
    resting: bool = False

    def as_dict(self) -> dict[str, int | float | bool]:
        """The counters as a plain dict (for JSON)."""
        return dataclasses.asdict(self)


class _NewestFrame:
    """A one-slot holder: a new frame replaces one the decoder has not taken yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: np.ndarray | MjpegFrame | None = None
        self._t = 0.0
        self._closed = False

    def put(self, frame: np.ndarray | MjpegFrame, t: float) -> bool:
        """Hold ``frame`` captured at ``t``; True when it replaced a frame never taken."""
        with self._cond:
            replaced = self._frame is not None
            self._frame, self._t = frame, t
            self._cond.notify()
        return replaced

    def take(self, timeout: float) -> tuple[np.ndarray | MjpegFrame, float] | None:
        """The newest frame and its capture time, waiting up to ``timeout``; None if none."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            return None if frame is None else (frame, self._t)

    def close(self) -> None:
        """Wake a waiting `take` for good."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class CameraReader:
    """Reads QR codes from a `FrameSource` and emits `CodeRead` (an `InputDevice`).

    Each frame a code is seen in gives one `CodeRead` whose ``t_read`` is that frame's
    capture time; the controller de-duplicates. The motion gate, when given, skips the
    decode of frames of an empty, still entrance. ``idle_every`` above 1 (with a gate)
    looks at only one frame in that many while the gate rests, back to every frame as soon
    as it opens (`IdlePacer`): cheaper, at the cost of up to ``idle_every - 1`` frame
    intervals before the first look at a phone. ``stats`` returns the counters.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        decoder: QrDecoder,
        gate: MotionGate | None = None,
        idle_every: int = 1,
        reconnect_max_s: float = 10.0,
        name: str = "camera",
        liveness: Liveness | None = None,
    ) -> None:
        self.name = name
        self._liveness = liveness or Liveness()
        self._source = source
        self._decoder = decoder
        self._gate = gate
        self._pacer = IdlePacer(idle_every=idle_every) if gate is not None else None
        self._reconnect_max_s = max(0.1, reconnect_max_s)
        self._slot = _NewestFrame()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stats = CameraStats()
        # The capture and decode threads count; the doctor and benchmarks read: one lock, so
        # a snapshot's counters always add up (every captured frame in exactly one class).
        self._stats_lock = threading.Lock()
        self._throttle = LogThrottle(60.0)
        self._emit: Emit | None = None

    @property
    def stats(self) -> CameraStats:
        """A snapshot of the counters (consistent: taken under the counters' lock)."""
        resting = self._pacer is not None and self._pacer.resting
        with self._stats_lock:
            return dataclasses.replace(self._stats, resting=resting)

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for name, by in increments.items():
                setattr(self._stats, name, getattr(self._stats, name) + by)

    def _set_connected(self, connected: bool) -> None:
        with self._stats_lock:
            self._stats.connected = connected

    def start(self, emit: Emit) -> None:
        """Open the camera and start the capture and decode threads (returns at once)."""
        if self._threads:
            raise KioskError(f"camera reader {self.name} is already started")
        self._emit = emit
        self._threads = [
            threading.Thread(target=self._capture_loop, name=f"{self.name}-capture", daemon=True),
            threading.Thread(target=self._decode_loop, name=f"{self.name}-decode", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop both threads (within about a second) and close the source."""
        self._stop.set()
        self._slot.close()
        deadline = time.monotonic() + 1.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                # The capture thread closes the source itself when its read returns: closing
                # it under a read in progress can crash inside the capture library.
                log.warning("%s: thread %s did not stop within 1 s", self.name, thread.name)

    # -- capture thread ----------------------------------------------------------------------

    def _capture_loop(self) -> None:
        """Open, read, hold the newest frame; on any failure reconnect with back-off."""
        source = self._source
        opened = False
        down_since: float | None = None  # when the outage began; None while frames flow
        backoff = 0.1
        try:
            while not self._stop.is_set():
                # A read blocks at most about a frame (streams: 2 s); a hang breaks this.
                self._liveness.beat(f"{self.name}-capture", 10.0)
                try:
                    if not opened:
                        source.open()
                        opened = True
                    frame = source.read()
                    if frame is None:
                        raise DeviceError(f"camera {source.name}: no frame")
                except Exception as exc:  # noqa: BLE001 - any library error is the camera lost: retried
                    if opened:
                        self._close_source()
                        opened = False
                    if self._stop.is_set():
                        break  # a source closing under a stop is no outage
                    if down_since is None:
                        down_since = time.monotonic()
                        self._went_away(exc)
                    self._liveness.beat(f"{self.name}-capture", backoff + 10.0)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._reconnect_max_s)
                    continue
                t = time.monotonic()  # the capture time: right after the frame arrived
                try:
                    if down_since is not None or not self._stats.connected:
                        outage_s = None if down_since is None else t - down_since
                        down_since, backoff = None, 0.1
                        self._came_back(outage_s)
                    stale = self._slot.put(frame, t)
                    self._count(frames_captured=1, frames_stale=int(stale))
                except Exception as exc:  # noqa: BLE001 - a bug here must not end the camera
                    self._log_throttled("capture", "handling a frame failed", exc)
        finally:
            if opened:
                self._close_source()
            self._set_connected(False)
            self._liveness.forget(f"{self.name}-capture")

    def _went_away(self, exc: BaseException) -> None:
        """Once per outage: one event (the gate's journal says "camera lost"), one debug line;
        retries stay quiet."""
        self._set_connected(False)
        detail = str(exc) if isinstance(exc, KioskError) else f"{type(exc).__name__}: {exc}"
        log.debug(
            "%s unavailable: %s; retrying with back-off up to %.0f s",
            self.name,
            detail,
            self._reconnect_max_s,
        )
        self._send(DeviceStatus(self.name, False, detail))

    def _came_back(self, outage_s: float | None) -> None:
        """Frames flow: after an outage (``outage_s`` long) say so; at the start only log."""
        self._set_connected(True)
        if outage_s is None:
            log.info("%s: reading frames from %s", self.name, self._source.name)
            return
        self._count(reconnects=1)
        log.debug("%s is back after %.1f s", self.name, outage_s)  # the journal says "back"
        self._send(DeviceStatus(self.name, True, "back"))

    def _close_source(self) -> None:
        try:
            self._source.close()
        except Exception as exc:  # noqa: BLE001 - closing a vanished device may fail; it is gone
            self._log_throttled("close", "closing the source failed", exc)

    # -- decode thread -------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        """Take the newest frame, gate, decode, emit; never dies on an error."""
        busy = False  # the gate opened on the last frame because something is in view
        while not self._stop.is_set():
            self._liveness.beat(f"{self.name}-decode", 10.0)  # one decode takes milliseconds
            taken = self._slot.take(timeout=0.5)
            if taken is None:
                continue
            frame, t_read = taken
            try:
                pacer, gate = self._pacer, self._gate
                if pacer is not None and not pacer.look():
                    self._count(frames_paced=1)
                    continue
                images = FrameImages(frame)
                if gate is not None:
                    # While someone is in view the full image is decoded anyway: the gate
                    # looks at it instead of a second, reduced decode of the same JPEG.
                    opened = gate.should_decode(images.gray() if busy else images.small())
                    busy = opened and gate.last_reason == "changed"
                    if pacer is not None:
                        # The periodic last resort is no sign of anyone: keep resting.
                        pacer.saw(opened and gate.last_reason != "periodic")
                    if not opened:
                        self._count(frames_gated=1)
                        continue
                start = time.perf_counter()
                codes = self._decoder.decode(images.gray())
                self._count(
                    decode_s_total=time.perf_counter() - start,
                    frames_decoded=1,
                    codes_read=len(codes),
                )
                for data in codes:
                    self._send(CodeRead(data, Source.CAMERA, t_read=t_read))
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end decoding
                self._count(frames_failed=1)
                self._log_throttled("decode", "handling a frame failed", exc)
        self._liveness.forget(f"{self.name}-decode")

    def _send(self, event: CodeRead | DeviceStatus) -> None:
        emit = self._emit
        if emit is None:
            return
        try:
            emit(event)
        except Exception as exc:  # noqa: BLE001 - the reader must outlive a faulty consumer
            self._log_throttled("emit", "passing an event on failed", exc)

    def _log_throttled(self, key: str, what: str, exc: BaseException) -> None:
        # The exception text only: a traceback per frame would fill the SD card, and no
        # message here carries decoded content (the decoders' errors name shapes, not data).
        allowed, held = self._throttle.allow(key)
        if allowed:
            more = f" ({held} more since the last report)" if held else ""
            log.warning("%s: %s: %s: %s%s", self.name, what, type(exc).__name__, exc, more)
