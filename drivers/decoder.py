"""QR code decoding: one interface, two back ends (zxing-cpp and ZBar), QR codes only.

The core sees only `QrDecoder.decode(gray) -> list[bytes]`: the raw bytes of each code, so
the core applies its own UTF-8 rule (credentials.md) instead of a library's charset guess.
Both back ends return the same raw bytes: zxing-cpp's ``Barcode.bytes`` and ZBar in binary
mode (see `PyzbarDecoder`).

Also here: `load_image` for still images (the ``kiosk decode`` command and tests) and
`MotionGate`, a cheap per-frame check that lets the camera loop skip the full decode while
nobody stands in front of the kiosk.

The decoding libraries are imported inside the back end constructors, so a missing library
is a clear `KioskError` naming what to install, and the other back end still works.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from kiosk.errors import KioskError

__all__ = [
    "DECODER_NAMES",
    "MotionGate",
    "PyzbarDecoder",
    "QrDecoder",
    "ZxingDecoder",
    "load_image",
    "make_decoder",
]


class QrDecoder(Protocol):
    """Finds the QR codes in a gray image and returns their raw bytes."""

    name: str

    def decode(self, gray: np.ndarray) -> list[bytes]:
        """Return the raw bytes of every QR code in ``gray`` (2-D uint8), top to bottom.

        An image without a readable code gives ``[]``. The order is stable: by the top, then
        the left edge of each code, so the same frame always gives the same list.
        """
        ...


def _check_gray(gray: np.ndarray) -> np.ndarray:
    """Return ``gray`` as a C-contiguous 2-D uint8 array, or raise `KioskError`."""
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        shape = getattr(gray, "shape", None)
        dtype = getattr(gray, "dtype", type(gray).__name__)
        raise KioskError(
            f"the QR decoder needs a 2-D uint8 gray image, got shape {shape} of {dtype}"
        )
    if gray.size == 0:
        raise KioskError("the QR decoder got an empty image")
    # Camera frames are often views (crops, channel slices); both libraries want plain rows.
    return np.ascontiguousarray(gray)


class ZxingDecoder:
    """The default back end: zxing-cpp restricted to QR Code (model 1 and 2).

    Micro QR and rMQR are excluded: passes are ordinary QR codes, and ZBar reads neither,
    so both back ends accept the same symbols. ``try_invert`` stays on because phones in
    dark mode show light-on-dark codes (without it a quarter of the synthetic frames, the
    inverted ones, are lost). The other options default to what measured best on the
    photographs and the synthetic camera frames (benchmarks/bench_decoder.py --sweep):
    ``try_rotate`` and ``try_downscale`` changed no read at 480p, 720p or 1080p, close-ups
    included, and cost up to 10 %, so they are off; the global-histogram binarizer is 5-8
    times faster but read 30 % instead of 68 % (480p) and 75 % instead of 100 % (720p) of
    the unevenly lit frames, so the local average stays.
    """

    name = "zxing"

    def __init__(
        self,
        *,
        try_invert: bool = True,
        try_rotate: bool = False,
        try_downscale: bool = False,
        binarizer: str = "LocalAverage",
    ) -> None:
        try:
            import zxingcpp
        except ImportError as exc:
            raise KioskError(
                "the zxing decoder needs the Python package zxing-cpp: pip install zxing-cpp"
            ) from exc
        if binarizer not in zxingcpp.Binarizer.__members__:
            choices = ", ".join(zxingcpp.Binarizer.__members__)
            raise KioskError(f"unknown zxing binarizer {binarizer!r}; choose one of: {choices}")
        self._read: Callable[[np.ndarray], list[Any]] = _zxing_reader(
            zxingcpp,
            try_invert=try_invert,
            try_rotate=try_rotate,
            try_downscale=try_downscale,
            binarizer=zxingcpp.Binarizer.__members__[binarizer],
        )

    def decode(self, gray: np.ndarray) -> list[bytes]:
        """Return the raw bytes of every QR code in ``gray``; see `QrDecoder.decode`."""
        gray = _check_gray(gray)
        try:
            found = self._read(gray)
        except Exception as exc:  # the boundary: a library failure becomes a KioskError
            raise KioskError(f"zxing-cpp failed on a {gray.shape} image: {exc}") from exc
        placed = []
        for barcode in found:
            pos = barcode.position
            corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
            top = min(p.y for p in corners)
            left = min(p.x for p in corners)
            placed.append((top, left, bytes(barcode.bytes)))
        return [data for _, _, data in sorted(placed)]


def _zxing_reader(zxingcpp: Any, **options: Any) -> Callable[[np.ndarray], list[Any]]:
    """Bind the QR-only format set and the options once, not on every frame."""
    kinds = zxingcpp.BarcodeFormat
    formats: Any
    if hasattr(kinds, "QRCodeModel2"):
        # zxing-cpp 3: QRCode names a family that includes Micro QR and rMQR.
        formats = [kinds.QRCodeModel1, kinds.QRCodeModel2]
    else:
        formats = kinds.QRCode  # zxing-cpp 2: the plain QR code only

    def read(gray: np.ndarray) -> list[Any]:
        return zxingcpp.read_barcodes(gray, formats=formats, **options)

    return read


class PyzbarDecoder:
    """The alternative back end: ZBar (through pyzbar's ctypes bindings), QR codes only.

    pyzbar's own ``decode()`` leaves ZBar converting the payload to UTF-8 by guessing its
    charset (Shift_JIS, ISO-8859-1, ...), and the guess is sometimes wrong; this class turns
    on ZBar's binary mode instead, so ``decode`` returns the raw bytes like zxing-cpp does.

    ZBar cannot read light-on-dark codes. With ``invert_pass`` (on by default) a frame in
    which nothing was found is scanned once more inverted: it doubles the cost only for
    frames without a code, which the `MotionGate` keeps rare, and it reads phones in dark
    mode. The figures are in benchmarks/bench_decoder.py.
    """

    name = "pyzbar"

    def __init__(self, *, invert_pass: bool = True) -> None:
        try:
            from pyzbar import wrapper
        except ImportError as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name == "pyzbar":
                raise KioskError(
                    "the pyzbar decoder needs the Python package pyzbar: pip install pyzbar"
                ) from exc
            # pyzbar is there but could not load the shared library (its only other failure).
            raise KioskError(
                f"pyzbar needs the Debian package libzbar0: apt-get install libzbar0 ({exc})"
            ) from exc
        self._zbar = wrapper
        self._invert_pass = invert_pass
        probe = wrapper.zbar_image_scanner_create()
        try:
            # ZBAR_CFG_BINARY (4) exists since ZBar 0.23; older releases refuse it (non-zero).
            if wrapper.zbar_image_scanner_set_config(probe, wrapper.ZBarSymbol.QRCODE, 4, 1):
                raise KioskError("pyzbar needs ZBar 0.23 or later (libzbar0) for raw bytes")
        finally:
            wrapper.zbar_image_scanner_destroy(probe)

    def decode(self, gray: np.ndarray) -> list[bytes]:
        """Return the raw bytes of every QR code in ``gray``; see `QrDecoder.decode`."""
        gray = _check_gray(gray)
        codes = self._scan(gray)
        if not codes and self._invert_pass:
            codes = self._scan(np.bitwise_not(gray))
        return [data for _, _, data in sorted(codes)]

    def _scan(self, gray: np.ndarray) -> list[tuple[int, int, bytes]]:
        """One ZBar pass; returns (top, left, raw bytes) of each QR code found."""
        z = self._zbar
        height, width = gray.shape
        pixels = gray.tobytes()  # kept referenced until the scan is over: ZBar does not copy
        scanner = z.zbar_image_scanner_create()
        if not scanner:
            raise KioskError("ZBar could not create an image scanner")
        try:
            # Every symbology off, then QR on in binary mode (no charset conversion).
            z.zbar_image_scanner_set_config(scanner, z.ZBarSymbol.NONE, z.ZBarConfig.CFG_ENABLE, 0)
            z.zbar_image_scanner_set_config(
                scanner, z.ZBarSymbol.QRCODE, z.ZBarConfig.CFG_ENABLE, 1
            )
            z.zbar_image_scanner_set_config(scanner, z.ZBarSymbol.QRCODE, 4, 1)
            image = z.zbar_image_create()
            if not image:
                raise KioskError("ZBar could not create an image")
            try:
                z.zbar_image_set_format(image, _FOURCC_Y800)
                z.zbar_image_set_size(image, width, height)
                z.zbar_image_set_data(image, _c_pointer(pixels), len(pixels), None)
                if z.zbar_scan_image(scanner, image) < 0:
                    raise KioskError("ZBar refused the image format")
                return list(_zbar_symbols(z, image))
            finally:
                z.zbar_image_destroy(image)
        finally:
            z.zbar_image_scanner_destroy(scanner)


# ZBar's fourcc for 8-bit gray ("Y800").
_FOURCC_Y800 = 808466521


def _c_pointer(data: bytes) -> Any:
    from ctypes import c_void_p, cast

    return cast(data, c_void_p)


def _zbar_symbols(z: Any, image: Any) -> list[tuple[int, int, bytes]]:
    """Read (top, left, raw bytes) of each QR symbol ZBar attached to ``image``."""
    from ctypes import string_at

    found = []
    symbol = z.zbar_image_first_symbol(image)
    while symbol:
        if symbol.contents.type == z.ZBarSymbol.QRCODE:
            data = string_at(z.zbar_symbol_get_data(symbol), z.zbar_symbol_get_data_length(symbol))
            points = range(z.zbar_symbol_get_loc_size(symbol))
            top = min((z.zbar_symbol_get_loc_y(symbol, i) for i in points), default=0)
            left = min((z.zbar_symbol_get_loc_x(symbol, i) for i in points), default=0)
            found.append((top, left, data))
        symbol = z.zbar_symbol_next(symbol)
    return found


_BACK_ENDS: dict[str, Callable[[], QrDecoder]] = {
    "zxing": ZxingDecoder,
    "pyzbar": PyzbarDecoder,
}
DECODER_NAMES: tuple[str, ...] = tuple(_BACK_ENDS)


def make_decoder(name: str) -> QrDecoder:
    """Build the QR decoder called ``name`` ("zxing" or "pyzbar").

    Raises `KioskError` naming the unknown name and the choices, or naming what to install
    when the back end's library is missing.
    """
    try:
        factory = _BACK_ENDS[name]
    except (KeyError, TypeError):
        choices = ", ".join(DECODER_NAMES)
        raise KioskError(f"unknown decoder {name!r}; choose one of: {choices}") from None
    return factory()


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file (PNG, JPEG, GIF, ...) as a 2-D uint8 gray array.

    Raises `KioskError` naming the file when it is missing or not a readable image.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise KioskError(f"{name}: cannot read the file: {exc.strerror or exc}") from exc
    # imdecode on the bytes, not imread on the path: it works for any file name and does not
    # print OpenCV warnings for unreadable files.
    gray = None
    if raw:
        gray = _quietly(cv2.imdecode, np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None and raw.startswith((b"GIF87a", b"GIF89a")) and not cv2.haveImageReader(name):
        # OpenCV builds without the GIF codec (before 4.11) still read GIF through FFmpeg.
        gray = _first_video_frame(name)
    if gray is None or gray.size == 0:
        raise KioskError(f"{name}: not a readable image")
    return gray


def _quietly(function: Callable[..., Any], *args: Any) -> Any:
    """Call an OpenCV function with its log silenced: the KioskError says it all.

    The log level is process-wide, so this is for one-shot commands, not the camera loop.
    """
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return function(*args)
    finally:
        cv2.utils.logging.setLogLevel(level)


def _first_video_frame(name: str) -> np.ndarray | None:
    """The first frame of ``name`` read through cv2.VideoCapture, in gray, or None."""
    capture = cv2.VideoCapture(name)
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        return None
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


class MotionGate:
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
