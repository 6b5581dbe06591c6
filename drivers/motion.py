"""Deciding, per camera frame, whether anything is worth a full QR decode.

`MotionGate` compares a small, smoothed luminance image of each frame with a slowly learnt
background of the empty entrance; `IdlePacer` optionally looks at fewer frames while the
gate rests. Both only count frames: no clock, so tests drive them frame by frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.errors import KioskError

__all__ = ["IdlePacer", "MotionGate"]


class MotionGate:
    """Says, per camera frame, whether the full QR decode is worth running.

    The frame (any size: the full gray image or a reduced decode of the JPEG) is shrunk to
    a grid of ``grid_width`` cells across, which averages sensor noise and JPEG artefacts
    away, and compared with a background of the empty entrance:

    - a frame-wide change of brightness is not motion: lamps on 50 Hz mains pulse at
      100 Hz and every frame catches them at another point of their cycle, and cameras
      adjust their exposure. The frame's grey levels are first mapped onto the
      background's rank for rank, which undoes any such change, clipping included;
    - a cell counts as changed when it differs from the background by more than
      ``noise_factor`` times the noise measured on idle frames (at least ``min_level``
      grey levels), so a noisy sensor in a dim hall does not keep the gate open;
    - the gate opens ("changed") when ``changed_fraction`` of the cells changed. That is
      the case from the first frame in which a person or a phone appears, and for as long
      as they stay, even perfectly still, since the background learns a change that stays
      only slowly (``hold_rate``); printed posters or a busy notice board never open it;
    - every ``every_n_frames`` frames without a decode, one is decoded anyway ("periodic"),
      the last resort for a change the background has absorbed.

    Otherwise the frame is skipped ("idle") and the background and the noise level learn
    from it (``learn_rate``). `last_reason` tells why.
    """

    def __init__(
        self,
        *,
        grid_width: int = 80,
        changed_fraction: float = 0.004,
        noise_factor: float = 6.0,
        min_level: float = 6.0,
        learn_rate: float = 0.05,
        hold_rate: float = 0.002,
        every_n_frames: int = 30,
    ) -> None:
        if every_n_frames < 1:
            raise KioskError(f"MotionGate every_n_frames must be 1 or more, got {every_n_frames}")
        if grid_width < 8:
            raise KioskError(f"MotionGate grid_width must be 8 or more, got {grid_width}")
        self._grid_width = grid_width
        self._changed_fraction = changed_fraction
        self._noise_factor = noise_factor
        self._min_level = min_level
        self._learn_rate = learn_rate
        self._hold_rate = hold_rate
        self._every_n = every_n_frames
        self._background: np.ndarray | None = None
        self._noise = min_level / noise_factor
        self._skipped = 0
        self.last_reason = "none"
        self.last_changed = 0.0  # the share of cells that changed in the last frame

    def should_decode(self, gray: np.ndarray) -> bool:
        """Return whether to decode this frame (``gray``: 2-D uint8); sets `last_reason`."""
        small = self._shrink(gray)
        background = self._background
        # The grid, not the image: a reduced decode and the full image of one camera agree.
        if background is None or background.shape != small.shape:
            self._background = small
            self._noise = self._min_level / self._noise_factor
            return self._open("first")
        level = _tone_matched(small, background)
        diff = np.abs(level - background)
        threshold = max(self._min_level, self._noise_factor * self._noise)
        self.last_changed = float(np.count_nonzero(diff > threshold)) / diff.size
        if self.last_changed >= self._changed_fraction:
            # Something is there: learn it only slowly, so a person standing still keeps
            # the gate open, while a moved chair is absorbed within half a minute or so.
            background += self._hold_rate * (level - background)
            return self._open("changed")
        background += self._learn_rate * (level - background)
        # The mean absolute difference of a cell is about 0.8 of its noise's deviation.
        self._noise += self._learn_rate * (float(diff.mean()) / 0.8 - self._noise)
        if self._skipped + 1 >= self._every_n:
            return self._open("periodic")
        self._skipped += 1
        self.last_reason = "idle"
        return False

    def _open(self, reason: str) -> bool:
        self._skipped = 0
        self.last_reason = reason
        return True

    def _shrink(self, gray: np.ndarray) -> np.ndarray:
        height, width = gray.shape[:2]
        cells_x = min(self._grid_width, width)
        cells_y = max(1, round(cells_x * height / width))
        # Every pixel averaged (no sampling, which would alias the posters' text): the same
        # cell means as a reduced JPEG decode gives, whose pixels are means of 8x8 blocks.
        small = cv2.resize(gray, (cells_x, cells_y), interpolation=cv2.INTER_AREA)
        # A light blur: an edge landing on a cell boundary must not count as a change.
        return cv2.GaussianBlur(small.astype(np.float32), (3, 3), 0.7)


def _tone_matched(small: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``small`` with its grey levels mapped onto the background's, rank for rank.

    A change of light or exposure moves every cell's level the same monotone way, which
    this mapping undoes exactly, including where the sensor clips near white (a plain
    gain would not: a brighter flash cannot brighten a white poster). A person or a phone
    changes a patch of cells against the rest, which no reordering of levels undoes.
    """
    flat = small.ravel()
    matched = np.empty_like(flat)
    matched[np.argsort(flat)] = np.sort(background, axis=None)
    return matched.reshape(small.shape)


class IdlePacer:
    """Looks at fewer frames while nobody is in view, and at all of them once something moves.

    While resting, one frame in ``idle_every`` is looked at (the rest are dropped before
    any JPEG decode); a gate that opens brings back every frame for at least
    ``hold_frames`` frames. ``idle_every`` 1 looks at every frame (no pacing). The cost
    is latency: a phone appearing waits for the next frame looked at, up to
    ``idle_every - 1`` frame intervals.
    """

    def __init__(self, *, idle_every: int = 1, hold_frames: int = 60) -> None:
        if idle_every < 1:
            raise KioskError(f"IdlePacer idle_every must be 1 or more, got {idle_every}")
        self._idle_every = idle_every
        self._hold_frames = hold_frames
        self._since_open = 0  # every frame at first: the gate learns the empty entrance
        self._since_look = 0

    @property
    def resting(self) -> bool:
        """True while only one frame in ``idle_every`` is looked at."""
        return self._since_open >= self._hold_frames

    def look(self) -> bool:
        """Whether to look at the next frame (call once per captured frame)."""
        self._since_open += 1
        if self.resting:
            self._since_look += 1
            if self._since_look < self._idle_every:
                return False
        self._since_look = 0
        return True

    def saw(self, opened: bool) -> None:
        """Tell what the gate said about the frame looked at: opened brings back full rate."""
        if opened:
            self._since_open = 0
