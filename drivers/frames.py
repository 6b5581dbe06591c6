"""Camera frames as they arrive, and the two images the camera path makes of each.

A camera delivers frames in one of three forms: compressed (MJPG, the only way most USB
cameras give 720p or 1080p at 30 fps), luminance (the Y plane of picamera2's YUV420, V4L2
GREY) or colour (BGR, from a video file or a library that decoded for us). `MjpegFrame`
carries a compressed one as it came. `FrameImages` makes, only when asked:

- ``small()``: a reduced gray image for the motion gate. From a JPEG it is a reduced-size
  greyscale decode (libjpeg scales in the DCT, so 1/8 size costs well under half a full
  decode and no colour conversion), so every frame is checked, cheaply;
- ``gray()``: the full-size gray image for the QR decoder, decoded straight to luminance
  (no colour conversion), only for the frames the gate lets through.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.errors import KioskError

__all__ = ["FrameImages", "MjpegFrame", "as_mjpeg"]

# The motion gate's grid is 80 cells across; a reduced decode gives at least that many
# pixels, each the mean of a block, as the gate's own averaging of a full image would.
_GATE_WIDTH = 80
_REDUCED = (
    (8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
    (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    (2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
)
# Start-of-frame markers (baseline, progressive, ...): they carry the image size.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True, eq=False)
class MjpegFrame:
    """One frame of an MJPG camera: a complete JPEG image, not yet decoded (1-D uint8)."""

    data: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3) from the JPEG header, like a decoded colour frame's shape."""
        width, height = jpeg_size(self.data)
        return (height, width, 3)


def as_mjpeg(buffer: np.ndarray | MjpegFrame) -> MjpegFrame | None:
    """``buffer`` as an `MjpegFrame` when it is a JPEG image (a raw MJPG buffer), else None.

    OpenCV hands raw buffers over as one row (or a flat array) of bytes.
    """
    if isinstance(buffer, MjpegFrame):
        return buffer
    if buffer.dtype != np.uint8 or buffer.size < 4:
        return None
    if not (buffer.ndim == 1 or (buffer.ndim == 2 and buffer.shape[0] == 1)):
        return None
    flat = buffer.reshape(-1)
    if flat[0] != 0xFF or flat[1] != 0xD8:
        return None
    return MjpegFrame(flat)


def jpeg_size(data: np.ndarray) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame header; `KioskError` when there is none."""
    raw = data[:65536].tobytes()  # the headers come first; never scan a whole frame
    i = 2
    while i + 9 < len(raw):
        if raw[i] != 0xFF:
            break
        marker = raw[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            return (raw[i + 7] << 8 | raw[i + 8], raw[i + 5] << 8 | raw[i + 6])
        i += 2 + (raw[i + 2] << 8 | raw[i + 3])
    raise KioskError("the camera sent a frame that is not a readable JPEG (no frame header)")


class FrameImages:
    """The gate's small image and the decoder's gray image of one frame, made on demand."""

    def __init__(self, frame: np.ndarray | MjpegFrame) -> None:
        # A source may hand over a raw MJPG buffer as OpenCV does: one row of bytes.
        if isinstance(frame, np.ndarray) and (frame.ndim == 1 or frame.shape[0] == 1):
            frame = as_mjpeg(frame) or frame
        self._frame = frame
        self._gray: np.ndarray | None = None
        self._small: np.ndarray | None = None

    def small(self) -> np.ndarray:
        """A gray image of the frame for the motion gate: reduced for a JPEG, else full."""
        if self._small is None:
            frame = self._frame
            if isinstance(frame, MjpegFrame):
                width, _ = jpeg_size(frame.data)
                flag = next(
                    (f for factor, f in _REDUCED if width // factor >= _GATE_WIDTH),
                    cv2.IMREAD_GRAYSCALE,
                )
                self._small = _decoded(frame.data, flag)
            else:
                self._small = self.gray()
        return self._small

    def gray(self) -> np.ndarray:
        """The full-size gray image for the QR decoder."""
        if self._gray is None:
            frame = self._frame
            if isinstance(frame, MjpegFrame):
                self._gray = _decoded(frame.data, cv2.IMREAD_GRAYSCALE)
            elif frame.ndim == 2:
                self._gray = frame
            elif frame.shape[2] == 1:
                self._gray = frame[:, :, 0]
            else:
                code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
                self._gray = cv2.cvtColor(frame, code)
        return self._gray


def _decoded(data: np.ndarray, flag: int) -> np.ndarray:
    image = cv2.imdecode(data, flag)
    if image is None or image.size == 0:
        # USB cameras send a torn frame now and then; the reader counts it and goes on.
        raise KioskError(f"the camera sent a frame that is not a readable JPEG ({data.size} bytes)")
    return image
