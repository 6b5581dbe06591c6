"""Frame sources: V4L2 cameras, video files, network streams and the Pi camera module.

Each is a `FrameSource`: open, read one frame at a time, close. They deliver frames in the
cheapest form the device allows, because reading the camera is most of what the kiosk
costs while nobody is in view:

- a V4L2 camera in MJPG hands over its JPEG buffers undecoded (`MjpegFrame`, OpenCV's
  ``CAP_PROP_CONVERT_RGB`` off): the camera path decodes a reduced greyscale image for
  the motion gate and the full luminance only for the frames it decodes, never colour;
- an MJPG video file does the same through FFmpeg's raw mode;
- picamera2 gives the Y plane of YUV420: the gray image itself.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from drivers.frames import MjpegFrame, as_mjpeg
from kiosk.errors import DeviceError, KioskError

__all__ = ["FrameSource", "OpenCVSource", "Picamera2Source", "make_source"]

log = logging.getLogger(__name__)

_STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_V4L2_INDEX = re.compile(r"/dev/video(\d+)")
# A network stream must not hang the capture thread (and stop()) on a dead server.
_STREAM_OPEN_TIMEOUT_MS = 5000
_STREAM_READ_TIMEOUT_MS = 2000
_MJPG = cv2.VideoWriter.fourcc(*"MJPG")
# Codec tags of motion JPEG in the containers a recording comes in (AVI, MOV, MKV).
_MJPG_TAGS = frozenset({"MJPG", "JPEG", "MJPA", "AVRN", "DMB1"})


def _fourcc(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).upper()


class FrameSource(Protocol):
    """Where frames come from: a camera, a file, a stream, a simulator.

    Only the reader's capture thread calls these. A frame returned by ``read`` belongs to
    the caller: the source must not write into it afterwards.
    """

    name: str

    def open(self) -> None:
        """Connect to the device; raise `DeviceError` when it is not there."""
        ...

    def read(self) -> np.ndarray | MjpegFrame | None:
        """One frame (BGR or gray uint8, or an MJPG frame still compressed), blocking at most
        about one frame interval.

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

    With ``raw_mjpg`` (the default) a V4L2 camera in MJPG and an MJPG video file deliver
    their JPEG buffers undecoded (`MjpegFrame`): the reader decodes only what it needs,
    in gray. A camera that sends anything else is read decoded, as before.
    """

    def __init__(
        self,
        url: str,
        *,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        raw_mjpg: bool = True,
    ):
        self.url = url
        self._raw_wanted = raw_mjpg
        self._raw = False
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
        self._raw = self._raw_wanted and self._ask_raw(capture)
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
        capture.set(cv2.CAP_PROP_FOURCC, _MJPG)
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

    def _ask_raw(self, capture: cv2.VideoCapture) -> bool:
        """Ask for undecoded MJPG buffers where the backend gives them; True when asked."""
        if self._kind == "v4l2":
            if _fourcc(capture) != "MJPG":
                return False
            return bool(capture.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        if self._kind == "file" and _fourcc(capture) in _MJPG_TAGS:
            return bool(capture.set(cv2.CAP_PROP_FORMAT, -1))  # FFmpeg: packets, not pixels
        return False

    def read(self) -> np.ndarray | MjpegFrame:
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
        if self._raw:
            mjpeg = as_mjpeg(frame)
            if mjpeg is not None:
                return mjpeg
            if frame.ndim == 1 or frame.shape[0] == 1:
                # Raw bytes that are no JPEG (a camera that ignored MJPG): let OpenCV decode.
                log.info("camera %s: frames are not MJPG; OpenCV decodes them", self.name)
                self._raw = False
                capture.set(cv2.CAP_PROP_CONVERT_RGB, 1)
                capture.set(cv2.CAP_PROP_FORMAT, 0)
                return self.read()
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
        gray: np.ndarray = cv2.cvtColor(array, code)
        return gray

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
