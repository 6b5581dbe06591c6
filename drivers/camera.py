"""The camera path: frame sources (V4L2, video files, network streams, the Pi camera) and
`CameraReader`, which turns frames into `CodeRead` events.

`CameraReader` runs two threads. The capture thread reads frames as the camera delivers them
and keeps only the newest in a one-slot holder; the decode thread takes whatever is newest
when it is free. So a slow decode never builds a queue of old frames: the code decoded is
what the camera saw at most one frame interval before the decode started, and the latency
from a phone appearing to its `CodeRead` is one decode, not a backlog.

The reader survives the camera: an unplugged USB camera, an ended stream or file, a library
error all become one `DeviceStatus(ok=False)`, reopen attempts with exponential back-off,
and one `DeviceStatus(ok=True, "back")` when frames flow again. Decoded content is never
logged (codes carry IDs).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from drivers.decoder import MotionGate, QrDecoder
from kiosk.errors import DeviceError, KioskError
from kiosk.events import CodeRead, DeviceStatus, Emit
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

_STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_V4L2_INDEX = re.compile(r"/dev/video(\d+)")
# A network stream must not hang the capture thread (and stop()) on a dead server.
_STREAM_OPEN_TIMEOUT_MS = 5000
_STREAM_READ_TIMEOUT_MS = 2000


class FrameSource(Protocol):
    """Where frames come from: a camera, a file, a stream, a simulator.

    Only the reader's capture thread calls these. A frame returned by ``read`` belongs to
    the caller: the source must not write into it afterwards.
    """

    name: str

    def open(self) -> None:
        """Connect to the device; raise `DeviceError` when it is not there."""
        ...

    def read(self) -> np.ndarray | None:
        """One frame (BGR or gray, uint8), blocking at most about one frame interval.

        None or `DeviceError` when the device vanished.
        """
        ...

    def close(self) -> None:
        """Release the device (idempotent)."""
        ...


def _masked(url: str) -> str:
    """``url`` with any password replaced, for logs and errors (stream URLs carry them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class OpenCVSource:
    """Frames through cv2.VideoCapture: a V4L2 device, a video file or a network stream.

    ``/dev/videoN`` opens V4L2 device N asking for MJPG at ``width`` x ``height`` and
    ``fps`` with a one-frame driver buffer, so a read returns the newest frame rather than
    one queued while the decoder was busy. Other ``/dev/`` paths (``/dev/v4l/by-id/...``)
    open through V4L2 by name. ``rtsp://``, ``http://`` and similar open as streams with
    open and read time-outs. Anything else is a video file, delivered at ``fps`` like a
    camera; its end counts as the camera vanishing (the reader then reopens it).
    """

    def __init__(self, url: str, *, width: int = 1280, height: int = 720, fps: float = 30.0):
        self.url = url
        self.name = _masked(url)
        self._width = width
        self._height = height
        self._fps = fps
        self._interval = 1.0 / fps if fps > 0 else 0.0
        if url.startswith("/dev/"):
            self._kind = "v4l2"
        elif urlsplit(url).scheme.lower() in _STREAM_SCHEMES:
            self._kind = "stream"
        else:
            self._kind = "file"
        self._capture: cv2.VideoCapture | None = None
        self._next_t = 0.0

    def open(self) -> None:
        """Open the device, file or stream; `DeviceError` naming the URL when it fails."""
        if self._capture is not None:
            return
        try:
            capture = self._open_capture()
        except cv2.error as exc:
            raise DeviceError(f"camera {self.name}: OpenCV cannot open it: {exc}") from exc
        if not capture.isOpened():
            capture.release()
            why = {
                "v4l2": "no such video device, or it is busy or not a camera",
                "stream": "the stream did not answer",
                "file": "not a readable video file",
            }[self._kind]
            raise DeviceError(f"camera {self.name}: cannot open: {why}")
        if self._kind == "v4l2":
            self._configure(capture)
        self._capture = capture
        self._next_t = time.monotonic()

    def _open_capture(self) -> cv2.VideoCapture:
        if self._kind == "v4l2":
            real = os.path.realpath(self.url)  # by-id links point at /dev/videoN
            match = _V4L2_INDEX.fullmatch(real)
            target: int | str = int(match.group(1)) if match else real
            return cv2.VideoCapture(target, cv2.CAP_V4L2)
        if self._kind == "stream":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                _STREAM_OPEN_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                _STREAM_READ_TIMEOUT_MS,
            ]
            return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not os.path.isfile(self.url):
            raise DeviceError(f"camera {self.name}: no such video file")
        return cv2.VideoCapture(self.url)

    def _configure(self, capture: cv2.VideoCapture) -> None:
        # FOURCC first: many UVC cameras offer 720p at 30 fps only in MJPG, and the size
        # and rate they accept depend on the format chosen.
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._height)
        capture.set(cv2.CAP_PROP_FPS, self._fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        log.info(
            "camera %s: %dx%d at %.0f fps",
            self.name,
            capture.get(cv2.CAP_PROP_FRAME_WIDTH),
            capture.get(cv2.CAP_PROP_FRAME_HEIGHT),
            capture.get(cv2.CAP_PROP_FPS),
        )

    def read(self) -> np.ndarray:
        """The next frame; `DeviceError` when the device vanished or the file ended."""
        capture = self._capture
        if capture is None:
            raise DeviceError(f"camera {self.name}: not open")
        if self._kind == "file":
            # A file stands in for a camera: frames at the camera's rate, not all at once.
            now = time.monotonic()
            if now < self._next_t:
                time.sleep(self._next_t - now)
            self._next_t = max(self._next_t + self._interval, now)
        try:
            ok, frame = capture.read()
        except cv2.error as exc:
            raise DeviceError(f"camera {self.name}: read failed: {exc}") from exc
        if not ok or frame is None:
            if self._kind == "file":
                raise DeviceError(f"camera {self.name}: the video file ended")
            raise DeviceError(f"camera {self.name}: no frame (unplugged, or the stream ended)")
        return frame

    def close(self) -> None:
        """Release the capture."""
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


class Picamera2Source:
    """The Raspberry Pi camera module through picamera2 (libcamera), in gray.

    picamera2 is imported when the camera is opened: Raspberry Pi OS ships it as a Debian
    package, elsewhere it is absent and `open` says what to install. Frames are the Y
    (luminance) plane of a YUV420 video stream: the gray image the decoder wants, without
    a colour conversion.
    """

    name = "picamera2"

    def __init__(self, *, width: int = 1280, height: int = 720, fps: float = 30.0):
        self._width = width
        self._height = height
        self._fps = fps
        self._camera: object | None = None

    def open(self) -> None:
        """Start the camera; `DeviceError` when picamera2 or the camera is missing."""
        if self._camera is not None:
            return
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise DeviceError(
                "picamera2 is not installed: on Raspberry Pi OS apt-get install python3-picamera2"
            ) from exc
        camera = None
        try:
            camera = Picamera2()
            config = camera.create_video_configuration(
                main={"size": (self._width, self._height), "format": "YUV420"},
                controls={"FrameRate": float(self._fps)},
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # the boundary: libcamera errors become a DeviceError
            if camera is not None:
                try:
                    camera.close()
                except Exception:
                    log.debug("picamera2: close after a failed start failed", exc_info=True)
            raise DeviceError(f"camera picamera2: cannot start the camera: {exc}") from exc
        self._camera = camera

    def read(self) -> np.ndarray:
        """The newest frame's luminance (2-D uint8)."""
        camera = self._camera
        if camera is None:
            raise DeviceError("camera picamera2: not open")
        try:
            array = camera.capture_array("main")  # type: ignore[attr-defined]
        except Exception as exc:
            raise DeviceError(f"camera picamera2: capture failed: {exc}") from exc
        if array.ndim == 2:
            # YUV420 comes as one plane of height * 3/2 rows: Y on top, then U and V.
            return np.ascontiguousarray(array[: self._height, : self._width])
        code = cv2.COLOR_BGRA2GRAY if array.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(array, code)

    def close(self) -> None:
        """Stop and release the camera."""
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.close()  # type: ignore[attr-defined]
            except Exception:
                log.debug("picamera2: close failed", exc_info=True)


def make_source(
    url: str,
    *,
    width: int,
    height: int,
    fps: float,
    sim_sources: Mapping[str, FrameSource] | None = None,
) -> FrameSource:
    """The frame source for a configured camera ``url`` (not yet opened).

    ``picamera2`` is the Pi camera module; ``sim:NAME`` (``sim:`` means ``sim:default``)
    is a simulated feed from ``sim_sources``, which the wiring module fills; anything else
    goes to OpenCV (``/dev/videoN``, a file, a stream URL). `KioskError` for an unknown
    simulated feed.
    """
    if url == "picamera2":
        return Picamera2Source(width=width, height=height, fps=fps)
    if url.startswith("sim:"):
        key = url[4:] or "default"
        sources = sim_sources or {}
        try:
            return sources[key]
        except KeyError:
            known = ", ".join(f"sim:{k}" for k in sorted(sources)) or "none is running"
            raise KioskError(
                f"camera url {url!r}: no simulated camera called {key!r} (known: {known})"
            ) from None
    return OpenCVSource(url, width=width, height=height, fps=fps)


@dataclasses.dataclass
class CameraStats:
    """Counters of a `CameraReader`, for benchmarks and ``kiosk doctor``.

    Every frame captured ends as exactly one of: stale (overwritten by a newer frame before
    the decoder took it), gated (the motion gate said idle), decoded, failed (an error while
    handling it), or still waiting in the holder.
    """

    frames_captured: int = 0
    frames_stale: int = 0
    frames_gated: int = 0
    frames_decoded: int = 0
    frames_failed: int = 0
    decode_s_total: float = 0.0
    codes_read: int = 0
    reconnects: int = 0
    connected: bool = False

    def as_dict(self) -> dict[str, int | float | bool]:
        """The counters as a plain dict (for JSON)."""
        return dataclasses.asdict(self)


class _NewestFrame:
    """A one-slot holder: a new frame replaces one the decoder has not taken yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._t = 0.0
        self._closed = False

    def put(self, frame: np.ndarray, t: float) -> bool:
        """Hold ``frame`` captured at ``t``; True when it replaced a frame never taken."""
        with self._cond:
            replaced = self._frame is not None
            self._frame, self._t = frame, t
            self._cond.notify()
        return replaced

    def take(self, timeout: float) -> tuple[np.ndarray, float] | None:
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
    decode of frames of an empty, still entrance. ``stats`` returns the counters.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        decoder: QrDecoder,
        gate: MotionGate | None = None,
        reconnect_max_s: float = 10.0,
        name: str = "camera",
        liveness: Liveness | None = None,
    ) -> None:
        self.name = name
        self._liveness = liveness or Liveness()
        self._source = source
        self._decoder = decoder
        self._gate = gate
        self._reconnect_max_s = max(0.1, reconnect_max_s)
        self._slot = _NewestFrame()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stats = CameraStats()
        self._throttle = LogThrottle(60.0)
        self._emit: Emit | None = None

    @property
    def stats(self) -> CameraStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._stats)

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
                except Exception as exc:
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
                    self._stats.frames_captured += 1
                    if self._slot.put(frame, t):
                        self._stats.frames_stale += 1
                except Exception as exc:  # a bug here must not end the camera
                    self._log_throttled("capture", "handling a frame failed", exc)
        finally:
            if opened:
                self._close_source()
            self._stats.connected = False
            self._liveness.forget(f"{self.name}-capture")

    def _went_away(self, exc: BaseException) -> None:
        """Once per outage: one event, one warning (retries stay quiet)."""
        self._stats.connected = False
        detail = str(exc) if isinstance(exc, KioskError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "%s unavailable: %s; retrying with back-off up to %.0f s",
            self.name,
            detail,
            self._reconnect_max_s,
        )
        self._send(DeviceStatus(self.name, False, detail))

    def _came_back(self, outage_s: float | None) -> None:
        """Frames flow: after an outage (``outage_s`` long) say so; at the start only log."""
        self._stats.connected = True
        if outage_s is None:
            log.info("%s: reading frames from %s", self.name, self._source.name)
            return
        self._stats.reconnects += 1
        log.info("%s is back after %.1f s", self.name, outage_s)
        self._send(DeviceStatus(self.name, True, "back"))

    def _close_source(self) -> None:
        try:
            self._source.close()
        except Exception as exc:
            self._log_throttled("close", "closing the source failed", exc)

    # -- decode thread -------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        """Take the newest frame, gate, decode, emit; never dies on an error."""
        stats = self._stats
        while not self._stop.is_set():
            self._liveness.beat(f"{self.name}-decode", 10.0)  # one decode takes milliseconds
            taken = self._slot.take(timeout=0.5)
            if taken is None:
                continue
            frame, t_read = taken
            try:
                gray = frame if frame.ndim == 2 else _to_gray(frame)
                if self._gate is not None and not self._gate.should_decode(gray):
                    stats.frames_gated += 1
                    continue
                start = time.perf_counter()
                codes = self._decoder.decode(gray)
                stats.decode_s_total += time.perf_counter() - start
                stats.frames_decoded += 1
                for data in codes:
                    stats.codes_read += 1
                    self._send(CodeRead(data, Source.CAMERA, t_read=t_read))
            except Exception as exc:
                stats.frames_failed += 1
                self._log_throttled("decode", "handling a frame failed", exc)
        self._liveness.forget(f"{self.name}-decode")

    def _send(self, event: CodeRead | DeviceStatus) -> None:
        emit = self._emit
        if emit is None:
            return
        try:
            emit(event)
        except Exception as exc:
            self._log_throttled("emit", "passing an event on failed", exc)

    def _log_throttled(self, key: str, what: str, exc: BaseException) -> None:
        # The exception text only: a traceback per frame would fill the SD card, and no
        # message here carries decoded content (the decoders' errors name shapes, not data).
        allowed, held = self._throttle.allow(key)
        if allowed:
            more = f" ({held} more since the last report)" if held else ""
            log.warning("%s: %s: %s: %s%s", self.name, what, type(exc).__name__, exc, more)


def _to_gray(frame: np.ndarray) -> np.ndarray:
    """A BGR, BGRA or one-channel 3-D frame in gray."""
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(frame, code)
