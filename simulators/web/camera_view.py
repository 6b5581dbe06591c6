"""The simulated camera's view for the console: the last frame the kiosk's camera driver
read, with the QR code found in it outlined.

`FrameTap` stands between the simulated camera and the kiosk's capture driver (it is the
driver's frame source, so the driver runs unchanged) and keeps a reference to the newest
frame it handed over. `render_png` draws that frame as PNG, with the code outlined where
zxing-cpp (the kiosk's decoder library) finds it in that very frame. The capture driver
exposes neither its last frame nor the decoder's position, so the tap sees what the driver
was given, and the outline is found again on request rather than taken from the decode.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import cv2
import numpy as np

_OUTLINE = (40, 200, 40)  # BGR: green
_THICKNESS = 3
_EMPTY = (360, 640)
# The console shows the view a quarter of a 720p frame wide: more pixels would only cost the
# PNG encoder (60 ms for a full 1280x720 frame, twice a second while a console looks).
VIEW_WIDTH = 640


class FrameSource(Protocol):
    """The capture driver's frame source (drivers/camera.py ``FrameSource``)."""

    name: str

    def open(self) -> None: ...
    def read(self) -> Any: ...
    def close(self) -> None: ...


class FrameTap:
    """A frame source that passes ``source`` through and remembers the newest frame."""

    def __init__(self, source: FrameSource) -> None:
        self._source = source
        self.name = source.name
        self._lock = threading.Lock()
        self._last: Any = None
        self._at = 0.0

    def open(self) -> None:
        """Connect to the camera (its errors pass through unchanged)."""
        self._source.open()

    def read(self) -> Any:
        """The camera's next frame (an image or a JPEG), remembered for the view before it
        goes to the driver."""
        frame = self._source.read()
        if frame is not None:
            with self._lock:
                # A reference, not a copy: the source never writes into a frame it handed
                # over (FrameSource's contract), and a copy at 30 fps costs the Pi's cores.
                self._last, self._at = frame, time.monotonic()
        return frame

    def close(self) -> None:
        """Disconnect (the last frame stays for the view)."""
        self._source.close()

    def last(self) -> tuple[Any, float | None]:
        """The newest frame and its age in seconds (None, None before the first)."""
        with self._lock:
            if self._last is None:
                return None, None
            return self._last, time.monotonic() - self._at

    def __getattr__(self, name: str) -> Any:
        # The simulator's own controls (show, vanish, ...) stay reachable through the tap.
        return getattr(self._source, name)


def as_image(frame: Any) -> np.ndarray:
    """A frame as a BGR image: a raw MJPG buffer (1-D JPEG bytes, bare or as the camera
    driver's ``MjpegFrame`` with its ``data``) is decoded, gray widened."""
    pixels: np.ndarray = frame if isinstance(frame, np.ndarray) else frame.data
    # (drivers/frames.py MjpegFrame: the JPEG bytes, not yet decoded, in ``data``.)
    if pixels.ndim == 1 or (pixels.ndim == 2 and pixels.shape[0] == 1):
        decoded: np.ndarray | None = cv2.imdecode(pixels.reshape(-1), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("the camera's frame is not a JPEG image")
        return decoded
    if pixels.ndim == 2:
        widened: np.ndarray = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        return widened
    return pixels.copy()


def find_codes(image: np.ndarray) -> list[np.ndarray]:
    """The corners (4x2 int32, clockwise from top left) of every QR code in ``image``."""
    import zxingcpp

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    qr: Any = zxingcpp.BarcodeFormat.QRCode  # the QR family: enough to outline what is there
    found = zxingcpp.read_barcodes(gray, formats=qr, try_invert=True)
    corners = []
    for barcode in found:
        pos = barcode.position
        points = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
        corners.append(np.array([[p.x, p.y] for p in points], dtype=np.int32))
    return corners


def render_png(frame: Any, *, age_s: float | None = None) -> tuple[bytes, int]:
    """(PNG bytes, number of codes outlined) for ``frame``, at most `VIEW_WIDTH` wide; a grey
    card saying "no frame" before the camera delivered one. The code's text is never written
    on the image."""
    if frame is None:
        card = np.full((*_EMPTY, 3), 90, dtype=np.uint8)
        _caption(card, "no frame from the camera yet")
        return _png(card), 0
    image: np.ndarray = as_image(frame)
    codes = find_codes(image)  # on the frame as the decoder had it, full size
    scale = min(1.0, VIEW_WIDTH / image.shape[1])
    if scale < 1.0:
        size = (VIEW_WIDTH, round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    for corners in codes:
        points = np.round(corners * scale).astype(np.int32)
        cv2.polylines(image, [points], True, _OUTLINE, _THICKNESS, cv2.LINE_AA)
    found = f"{len(codes)} code{'s' if len(codes) != 1 else ''} found"
    _caption(image, found + (f", frame {age_s:.1f} s old" if age_s is not None else ""))
    return _png(image), len(codes)


def _caption(image: np.ndarray, text: str) -> None:
    # Sized to the view: the console shows it at half its width.
    scale = max(0.5, image.shape[0] / 240)
    bar = int(24 * scale)
    cv2.rectangle(image, (0, 0), (image.shape[1], bar), (0, 0, 0), -1)
    cv2.putText(
        image,
        text,
        (int(6 * scale), int(17 * scale)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * scale,
        (255, 255, 255),
        max(1, round(scale)),
        cv2.LINE_AA,
    )


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("could not encode the camera view as PNG")
    return bytes(data.tobytes())
