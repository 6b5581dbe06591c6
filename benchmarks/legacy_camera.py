"""The camera path as it was before issue 12, kept so the benchmarks can compare (not used
by the kiosk): the motion gate with its "code-like" texture test, and a source wrapper that
decodes every MJPG frame to colour in the capture thread, as cv2.VideoCapture does unless
asked for raw buffers. The decoder options of that time are `drivers.decoder.BEFORE_ISSUE_12`.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.errors import KioskError

__all__ = ["DecodedColourSource", "LegacyMotionGate"]


class DecodedColourSource:
    """Wraps a source of MJPG buffers and hands over each frame decoded to BGR."""

    def __init__(self, source) -> None:
        self._source = source
        self.name = source.name

    def open(self) -> None:
        self._source.open()

    def read(self) -> np.ndarray:
        return cv2.imdecode(self._source.read().data, cv2.IMREAD_COLOR)

    def close(self) -> None:
        self._source.close()


class LegacyMotionGate:
    """Says, per camera frame, whether the full QR decode is worth running.

    The frame is reduced to a small grid (80x60 cells by default). The gate opens when

    - the scene changed: enough cells differ from the previous frame (someone steps up, a
      phone comes into view, the screen lights up), or
    - a code-like region is present: a patch of cells where sampled pixels flip between
      dark and light in both directions, as the modules of a QR code do. This keeps decoding
      a code held perfectly still after a first, motion-blurred attempt failed, or
    - ``every_n_frames`` frames went by without a decode, as a last resort (a code the
      texture test misses is still read, within N frames).

    Otherwise (an empty, still entrance) the frame is skipped. A false opening costs one
    decode; a false skip costs at most N-1 frames of delay. `last_reason` tells why.
    """

    def __init__(
        self,
        *,
        grid: tuple[int, int] = (80, 60),
        change_level: int = 16,
        changed_fraction: float = 0.004,
        edge_level: int = 48,
        texture_fraction: float = 0.3,
        patch_cells: int = 6,
        every_n_frames: int = 10,
    ) -> None:
        if every_n_frames < 1:
            raise KioskError(f"MotionGate every_n_frames must be 1 or more, got {every_n_frames}")
        self._grid = grid
        self._change_level = change_level
        self._changed_cells = max(1, round(changed_fraction * grid[0] * grid[1]))
        self._edge_level = edge_level
        self._texture_fraction = texture_fraction
        self._patch = (patch_cells, patch_cells)
        self._every_n = every_n_frames
        self._previous: np.ndarray | None = None
        self._previous_shape: tuple[int, ...] | None = None
        self._skipped = 0
        self.last_reason = "none"

    def should_decode(self, gray: np.ndarray) -> bool:
        """Return whether to decode ``gray`` (a 2-D uint8 frame); sets `last_reason`."""
        # Averaging smooths sensor noise, so the change test sees the scene, not grain. Every
        # pixel would cost 0.1-0.2 ms a frame; four samples per cell cost about 0.015 ms.
        height, width = gray.shape
        step_y = max(1, height // (2 * self._grid[1]))
        step_x = max(1, width // (2 * self._grid[0]))
        sampled = gray[::step_y, ::step_x]
        small = cv2.resize(sampled, self._grid, interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, previous_shape = self._previous, self._previous_shape
        self._previous, self._previous_shape = small, gray.shape
        if previous is None or previous_shape != gray.shape:
            reason = "first"
        elif self._changed(small, previous):
            reason = "changed"
        elif self._code_like(gray):
            reason = "code-like"
        elif self._skipped + 1 >= self._every_n:
            reason = "periodic"
        else:
            self._skipped += 1
            self.last_reason = "idle"
            return False
        self._skipped = 0
        self.last_reason = reason
        return True

    def _changed(self, small: np.ndarray, previous: np.ndarray) -> bool:
        moved = np.count_nonzero(np.abs(small - previous) > self._change_level)
        return moved >= self._changed_cells

    def _code_like(self, gray: np.ndarray) -> bool:
        # Sampling single pixels (not averaging) keeps the modules' black/white: over a code,
        # neighbouring samples land on unrelated modules and differ strongly about half the
        # time, in both directions; plain surfaces and single edges rarely do.
        height, width = gray.shape
        step_y = max(1, height // self._grid[1])
        step_x = max(1, width // self._grid[0])
        cells = gray[::step_y, ::step_x].astype(np.int16)
        flips_x = (np.abs(np.diff(cells, axis=1)) > self._edge_level)[:-1, :]
        flips_y = (np.abs(np.diff(cells, axis=0)) > self._edge_level)[:, :-1]
        density_x = cv2.blur(flips_x.astype(np.float32), self._patch)
        density_y = cv2.blur(flips_y.astype(np.float32), self._patch)
        return bool(np.max(np.minimum(density_x, density_y)) >= self._texture_fraction)
