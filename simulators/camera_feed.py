"""A simulated camera pointed at an entrance: frames fed to the camera driver in real time.

`SimFrameSource` implements `drivers.camera.FrameSource`, so the kiosk's own `CameraReader`,
motion gate and QR decoder run on it unchanged (DEVELOPERS.md principle 1). A scenario calls
`show` to have a person hold up a phone with a code, `vanish` to unplug the camera; the feed
records a timeline so tests and benchmarks can measure from the first frame that showed a
code, without storing the code itself (codes carry IDs).

Cheapness matters because the feed runs beside the kiosk on the same cores and benchmarks
measure the kiosk, not the feed: the scene and a few noise frames are rendered once, the
person with the phone once per presentation, and each frame is then a copy and a paste.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.errors import DeviceError
from simulators.issuer import qr_matrix

__all__ = ["SimFrameSource", "code_ref"]

# Distinct noise frames cycled through; more would only cost memory (the gate and decoder
# cannot tell a cycle of six from true noise).
_NOISE_FRAMES = 6
_NOISE_SIGMA = 3.0
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
    top: int
    left: int
    patches: list[np.ndarray]  # one per noise frame, so the code area is noisy too
    started_at: float | None = None


class SimFrameSource:
    """A simulated camera: 8-bit gray frames of an entrance, paced at ``fps`` in real time.

    ``read`` sleeps until the next frame is due, as a camera does, and a reader that falls
    behind gets the current frame, not a backlog. The seed fixes the scene and every
    presentation's size, angle, blur and placement, so a run is repeatable.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        *,
        seed: int = 0,
        name: str = "sim",
    ) -> None:
        if width < 64 or height < 48 or fps <= 0:
            raise ValueError(
                f"SimFrameSource needs at least 64x48 and fps > 0, got {width}x{height}@{fps}"
            )
        self.name = name
        self.width = width
        self.height = height
        self.fps = fps
        self._interval = 1.0 / fps
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        scene = _scene(self._rng, width, height)
        self._scene = scene
        self._noise = [
            np.clip(self._rng.normal(0.0, _NOISE_SIGMA, scene.shape), -127, 127).astype(np.int8)
            for _ in range(_NOISE_FRAMES)
        ]
        self._idle = [np.clip(scene + n, 0, 255).astype(np.uint8) for n in self._noise]
        self._pending: _Presentation | None = None
        self._current: _Presentation | None = None
        self._clear_requested = False
        self._open = False
        self._vanished = False
        self._next_t = 0.0
        self._frame_no = 0
        self._first_shown: dict[str, float] = {}
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
            self._next_t = time.monotonic()

    def read(self) -> np.ndarray:
        """The next frame, once it is due; `DeviceError` once the camera was unplugged."""
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
            index = self._frame_no % _NOISE_FRAMES
            self._frame_no += 1
            frame = self._idle[index].copy()
            shown = self._presentation_for_frame(time.monotonic())
            if shown is not None:
                patch = shown.patches[index]
                frame[
                    shown.top : shown.top + patch.shape[0], shown.left : shown.left + patch.shape[1]
                ] = patch
            # Taken last, after the frame is ready: the reader's capture time follows it.
            t = time.monotonic()
            if shown is not None and shown.started_at is None:
                shown.started_at = t
                self._timeline.append((t, f"show {shown.ref}"))
                self._first_shown.setdefault(shown.text, t)
            self.frames_served += 1
            return frame

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
            return self._first_shown.get(text)

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
        """Draw a person holding a phone showing ``text`` over the scene, once."""
        height, width = self.height, self.width
        if scale is None:
            scale = float(rng.uniform(*_SCALE_RANGE))
        if not 0.05 <= scale <= 0.9:
            raise ValueError(f"scale must be between 0.05 and 0.9 of the frame height, got {scale}")
        modules = np.array(qr_matrix(text, border=0), dtype=np.uint8)
        module_px = scale * height / modules.shape[0]
        # The area the person covers: about half the frame's width, from the head down.
        cx = int(width * rng.uniform(0.45, 0.55))
        cy = int(height * rng.uniform(0.5, 0.6))  # the phone's centre
        top = max(0, int(height * 0.05))
        half = int(width * 0.27)
        left, right = max(0, cx - half), min(width, cx + half)
        region = self._scene[top:height, left:right].copy()
        rh, rw = region.shape
        px, py = cx - left, cy - top  # phone centre in region coordinates

        # Body and head in clothing and skin tones: the gate sees a change when they appear.
        clothing = float(rng.uniform(35, 90))
        skin = float(rng.uniform(110, 170))
        cv2.ellipse(
            region, (px, int(rh * 0.95)), (int(rw * 0.45), int(rh * 0.6)), 0, 0, 360, clothing, -1
        )
        head_r = max(4, int(height * 0.09))
        cv2.circle(region, (px + int(rng.integers(-5, 6)), head_r + 2), head_r, skin, -1)

        phone, mask = _phone(modules, module_px, rng, inverted=inverted)
        angle = float(rng.uniform(-4.0, 4.0))  # people hold phones nearly, not exactly, level
        ph, pw = phone.shape
        turn = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, 1.0)
        turn[:, 2] += (px - pw / 2, py - ph / 2)
        drawn = cv2.warpAffine(phone, turn, (rw, rh), flags=cv2.INTER_LINEAR)
        cover = cv2.warpAffine(mask, turn, (rw, rh), flags=cv2.INTER_LINEAR)
        region = region * (1.0 - cover) + drawn * cover
        # Focus and a hand that is never quite still.
        region = cv2.GaussianBlur(region, (0, 0), float(rng.uniform(0.6, 1.0)))
        patches = [
            np.clip(region + noise[top:height, left:right], 0, 255).astype(np.uint8)
            for noise in self._noise
        ]
        return _Presentation(text, code_ref(text), duration_s, top, left, patches)


def _scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """An entrance seen by the kiosk: unevenly lit wall, a door frame, a floor (float32)."""
    ramp = np.linspace(rng.uniform(60, 110), rng.uniform(120, 180), width, dtype=np.float32)
    scene = np.tile(ramp, (height, 1))
    scene[int(height * 0.8) :, :] *= 0.7  # the floor
    for _ in range(4):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 20, width // 4)), int(rng.integers(height // 10, height))
        scene[y : y + h, x : x + w] = rng.uniform(30, 200)
    return cv2.GaussianBlur(scene, (0, 0), 1.5)


def _phone(
    modules: np.ndarray, module_px: float, rng: np.random.Generator, *, inverted: bool
) -> tuple[np.ndarray, np.ndarray]:
    """An upright phone showing the code: (image, coverage mask), both float32."""
    # Screens show neither pure black nor pure white.
    dark, light = float(rng.uniform(20, 50)), float(rng.uniform(185, 230))
    if inverted:
        dark, light = light, dark
    code_px = max(1, round(modules.shape[0] * module_px))
    quiet = round(4 * module_px)  # the quiet zone the standard asks for
    # Modules drawn large then shrunk by area: edges blend as a camera samples them.
    big = np.kron(modules, np.ones((8, 8), np.uint8))
    code = cv2.resize(
        np.where(big == 1, dark, light).astype(np.float32),
        (code_px, code_px),
        interpolation=cv2.INTER_AREA,
    )
    screen_w = code_px + 2 * quiet
    screen_h = int(screen_w * 1.4)
    bezel = max(2, screen_w // 20)
    phone = np.full((screen_h + 2 * bezel, screen_w + 2 * bezel), 25.0, np.float32)
    phone[bezel : bezel + screen_h, bezel : bezel + screen_w] = light
    y = bezel + (screen_h - code_px) // 2
    phone[y : y + code_px, bezel + quiet : bezel + quiet + code_px] = code
    return phone, np.ones_like(phone)
