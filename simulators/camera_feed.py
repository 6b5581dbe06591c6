"""A simulated camera pointed at an entrance: frames fed to the camera driver in real time.

`SimFrameSource` implements `drivers.camera.FrameSource`, so the kiosk's own `CameraReader`,
motion gate and QR decoder run on it unchanged (DEVELOPERS.md principle 1). A scenario calls
`show` to have a person hold up a phone with a code, `vanish` to unplug the camera; the feed
records a timeline so tests and benchmarks can measure from the moment a phone came into
view, without storing the code itself (codes carry IDs).

It is as hard as a real entrance (`simulators.camera_scene`): a textured background with
posters and notices, sensor noise, lamps flickering at 100 Hz against the frame rate, the
phone as a tilted plane with blur, and frames sent as MJPG, JPEG images the capture driver
must decode, as a USB camera's are (``mjpg=False`` sends gray frames, as picamera2's Y plane
is). Light takes one frame to become a frame: what `read` returns was exposed during the
previous frame interval, so a phone held up is in the second frame read after it, not the
first.

Cheapness matters because the feed runs beside the kiosk on the same cores and benchmarks
measure the kiosk, not the feed: the scene and a cycle of exposed, encoded idle frames are
made once, each presentation once, and each frame is then a copy.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.frames import MjpegFrame
from kiosk.errors import DeviceError
from simulators import camera_scene as cs
from simulators.issuer import qr_matrix

__all__ = ["SimFrameSource", "code_ref"]

# Distinct exposed frames cycled through: a multiple of 3, the period of 100 Hz flicker at
# 30 fps. More would only cost memory (the gate and decoder cannot tell six from more).
_CYCLE = 6
# The side of the code's modules (quiet zone excluded) relative to the frame height when
# `show` is given no scale: a phone held at arm's length in front of a kiosk camera.
_SCALE_RANGE = (0.30, 0.40)


def code_ref(text: str) -> str:
    """The short reference a timeline uses for ``text``: a sha256 prefix, never the code."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass
class _Presentation:
    """One person showing one code: rendered once, pasted into every frame it lasts."""

    text: str
    ref: str
    duration_s: float
    frames: list[np.ndarray]  # one per frame of the cycle, ready to send
    started_at: float | None = None  # when the first frame showing it was returned
    exposed_at: float | None = None  # when that frame's exposure began: the phone in view


class SimFrameSource:
    """A simulated camera: MJPG (or gray) frames of an entrance, paced at ``fps`` in real time.

    ``read`` sleeps until the next frame is due, as a camera does, and a reader that falls
    behind gets the current frame, not a backlog. The seed fixes the scene and every
    presentation's size, angle, blur and placement, so a run is repeatable. ``flicker``
    is the depth of the lamps' 100 Hz pulse, ``read_noise`` the sensor's noise in grey
    levels, ``busy`` adds a dense notice board to the scene.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        *,
        seed: int = 0,
        name: str = "sim",
        mjpg: bool = True,
        quality: int = 85,
        flicker: float = 0.06,
        read_noise: float = 2.5,
        busy: bool = False,
    ) -> None:
        if width < 64 or height < 48 or fps <= 0:
            raise ValueError(
                f"SimFrameSource needs at least 64x48 and fps > 0, got {width}x{height}@{fps}"
            )
        self.name = name
        self.width = width
        self.height = height
        self.fps = fps
        self.mjpg = mjpg
        self._quality = quality
        self._interval = 1.0 / fps
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._scene = cs.entrance(self._rng, width, height, busy=busy)
        phase = float(self._rng.uniform(0, 2 * np.pi))
        self._gains = [cs.flicker_gain(i, fps, flicker, phase) for i in range(_CYCLE)]
        # Noise drawn once per frame of the cycle, added to whatever the frame shows.
        sigma = np.sqrt(read_noise**2 + 0.08 * np.clip(self._scene, 0, 255))
        self._noise = [
            np.clip(self._rng.standard_normal(self._scene.shape) * sigma, -127, 127).astype(np.int8)
            for _ in range(_CYCLE)
        ]
        self._idle_raw = [self._expose(self._scene, i) for i in range(_CYCLE)]
        self._idle = [self._encode(raw) for raw in self._idle_raw]
        self._pending: _Presentation | None = None
        self._current: _Presentation | None = None
        self._clear_requested = False
        self._open = False
        self._vanished = False
        self._next_t = 0.0
        self._frame_no = 0
        self._exposing: tuple[np.ndarray, _Presentation | None] | None = None
        self._first_shown: dict[str, tuple[float, float]] = {}
        self._timeline: list[tuple[float, str]] = []
        self.frames_served = 0
        self.opens_refused = 0

    # -- FrameSource ---------------------------------------------------------------------

    def open(self) -> None:
        """Connect; fails with `DeviceError` while the camera is unplugged (`vanish`)."""
        with self._lock:
            if self._vanished:
                self.opens_refused += 1
                raise DeviceError(f"simulated camera {self.name!r}: not connected")
            self._open = True
            self._exposing = None
            self._next_t = time.monotonic()

    def read(self) -> MjpegFrame | np.ndarray:
        """The next frame, once it is due; `DeviceError` once the camera was unplugged.

        A JPEG image (the bytes an MJPG camera sends, as `OpenCVSource` hands them over)
        or, without ``mjpg``, a gray frame.
        """
        with self._lock:
            self._check_readable()
            due = self._next_t
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        elif now - due > self._interval:
            # A camera does not queue frames for a slow reader: it skips ahead.
            due = now
        with self._lock:
            self._check_readable()
            self._next_t = due + self._interval
            now = time.monotonic()
            # The frame exposed during the last interval goes out; the next one starts now.
            sent = self._exposing or self._expose_next(now)
            self._exposing = self._expose_next(now)
            frame, shown = sent
            t = time.monotonic()  # taken last: the reader's capture time follows it
            if shown is not None and shown.started_at is None:
                shown.started_at = t
                self._timeline.append((t, f"show {shown.ref}"))
                assert shown.exposed_at is not None
                self._first_shown.setdefault(shown.text, (t, shown.exposed_at))
            self.frames_served += 1
            return MjpegFrame(frame.copy()) if self.mjpg else frame.copy()

    def _expose_next(self, now: float) -> tuple[np.ndarray, _Presentation | None]:
        """What the sensor sees from ``now`` for one interval. Lock held."""
        index = self._frame_no % _CYCLE
        self._frame_no += 1
        shown = self._presentation_for_frame(now)
        if shown is None:
            return self._idle[index], None
        if shown.exposed_at is None:
            shown.exposed_at = now
        return shown.frames[index], shown

    def close(self) -> None:
        """Disconnect; `open` again to resume."""
        with self._lock:
            self._open = False

    # -- the scenario's controls -----------------------------------------------------------

    def show(
        self, text: str, duration_s: float, *, inverted: bool = False, scale: float | None = None
    ) -> None:
        """Have a person hold up ``text`` as a QR code from the next frame for ``duration_s``.

        Returns without waiting for the presentation (rendering it takes 15-20 ms). A
        presentation still running is replaced, as when the next person steps up.
        ``inverted`` draws a light-on-dark code (a phone in dark mode); ``scale`` is the
        code's side (quiet zone excluded) over the frame height, by default drawn from
        0.30-0.40 by the seed.
        """
        if duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {duration_s}")
        with self._lock:  # the generator is shared with nothing else, but show may race show
            rng = np.random.default_rng(self._rng.integers(2**63))
        shown = self._render(text, duration_s, rng, inverted=inverted, scale=scale)
        with self._lock:
            self._pending = shown
            self._clear_requested = False

    def clear(self) -> None:
        """The person steps away: from the next frame nothing is shown."""
        with self._lock:
            self._pending = None
            self._clear_requested = True

    def vanish(self) -> None:
        """Unplug the camera: `read` raises `DeviceError` and `open` fails until `reappear`."""
        with self._lock:
            self._vanished = True
            self._open = False
            self._timeline.append((time.monotonic(), "vanish"))

    def reappear(self) -> None:
        """Plug the camera back in: `open` works again."""
        with self._lock:
            self._vanished = False
            self._timeline.append((time.monotonic(), "reappear"))

    # -- what happened ---------------------------------------------------------------------

    def first_shown_at(self, text: str) -> float | None:
        """``time.monotonic()`` when the first frame showing ``text`` was returned, or None."""
        with self._lock:
            times = self._first_shown.get(text)
        return None if times is None else times[0]

    def first_in_view_at(self, text: str) -> float | None:
        """When the phone showing ``text`` came into view: the exposure start of the first
        frame showing it, one frame interval or so before `first_shown_at`; or None."""
        with self._lock:
            times = self._first_shown.get(text)
        return None if times is None else times[1]

    @property
    def timeline(self) -> list[tuple[float, str]]:
        """(monotonic time, event) entries: ``show REF``, ``gone REF``, ``vanish``,
        ``reappear``, where REF is `code_ref` of the text (the code itself is never kept
        here)."""
        with self._lock:
            return list(self._timeline)

    # -- inside ------------------------------------------------------------------------------

    def _check_readable(self) -> None:
        if self._vanished:
            raise DeviceError(f"simulated camera {self.name!r}: unplugged")
        if not self._open:
            raise DeviceError(f"simulated camera {self.name!r}: not open")

    def _presentation_for_frame(self, now: float) -> _Presentation | None:
        """What this frame shows; records ``gone`` when a presentation ends. Lock held."""
        current = self._current
        if current is not None and (
            self._clear_requested
            or self._pending is not None
            or (current.started_at is not None and now >= current.started_at + current.duration_s)
        ):
            self._timeline.append((now, f"gone {current.ref}"))
            self._current = current = None
        self._clear_requested = False
        if self._pending is not None:
            self._current = current = self._pending
            self._pending = None
        return current

    def _render(
        self,
        text: str,
        duration_s: float,
        rng: np.random.Generator,
        *,
        inverted: bool,
        scale: float | None,
    ) -> _Presentation:
        """Draw a person holding a phone showing ``text`` over the scene, once per cycle frame."""
        height, width = self.height, self.width
        if scale is None:
            scale = float(rng.uniform(*_SCALE_RANGE))
        if not 0.05 <= scale <= 0.9:
            raise ValueError(f"scale must be between 0.05 and 0.9 of the frame height, got {scale}")
        modules = np.array(qr_matrix(text, border=0), dtype=np.uint8)
        cx, cy = rng.uniform(0.45, 0.55), rng.uniform(0.5, 0.6)  # the phone's centre
        look = cs.Look(
            module_px=scale * height / modules.shape[0],
            yaw_deg=float(rng.uniform(-15, 15)),
            pitch_deg=float(rng.uniform(-15, 15)),
            roll_deg=float(rng.uniform(-5, 5)),  # people hold phones nearly level
            centre=(float(cx), float(cy)),
            focus_sigma=float(rng.uniform(0.5, 0.9)),
            glare=float(rng.uniform(0.1, 0.3)) if rng.random() < 0.25 else 0.0,
            finger=float(rng.uniform(0.2, 0.5)) if rng.random() < 0.25 else 0.0,
            dark_mode=inverted,
            dark=float(rng.uniform(20, 50)),
            light=float(rng.uniform(185, 230)),
        )
        scene = self._scene.copy()
        # Body and head in clothing and skin tones, behind the phone.
        person = np.zeros((height, width), np.uint8)
        px = int(cx * width)
        body = (int(width * 0.24), int(height * 0.55))
        cv2.ellipse(person, (px, int(height * 0.95)), body, 0, 0, 360, 1, -1)
        scene[person == 1] = rng.uniform(35, 90, 3)
        head = np.zeros_like(person)
        head_r = max(4, int(height * 0.09))
        cv2.circle(
            head, (px + int(rng.integers(-5, 6)), int(height * 0.05) + head_r), head_r, 1, -1
        )
        scene[head == 1] = rng.uniform(110, 170) * np.array([0.8, 0.9, 1.1])
        layer, cover = cs.render_phone(modules, look, rng, width, height)
        drawn = cs.composite(scene, layer, cover)
        rows = np.flatnonzero(np.abs(drawn - self._scene).max(axis=(1, 2)) > 0.5)
        top, bottom = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
        frames = []
        for index in range(_CYCLE):
            raw = self._idle_raw[index].copy()
            raw[top:bottom] = self._expose(drawn[top:bottom], index, rows=(top, bottom))
            frames.append(self._encode(raw))
        return _Presentation(text, code_ref(text), duration_s, frames)

    def _expose(
        self, image: np.ndarray, index: int, rows: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The sensor's frame ``index`` of the cycle: flicker gain and noise (BGR uint8)."""
        noise = self._noise[index]
        if rows is not None:
            noise = noise[rows[0] : rows[1]]
        frame: np.ndarray = np.clip(image * self._gains[index] + noise, 0, 255).astype(np.uint8)
        return frame

    def _encode(self, raw: np.ndarray) -> np.ndarray:
        """What goes down the cable: a JPEG (MJPG) or the gray (luminance) image."""
        if self.mjpg:
            return cs.mjpg(raw, self._quality)
        return cv2.cvtColor(raw, cv2.COLOR_BGR2GRAY)
