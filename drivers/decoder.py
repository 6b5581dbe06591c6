"""QR code decoding: one interface, two back ends (zxing-cpp and ZBar), QR codes only.

The core sees only `QrDecoder.decode(gray) -> list[bytes]`: the raw bytes of each code, so
the core applies its own UTF-8 rule (credentials.md) instead of a library's charset guess.
Both back ends return the same raw bytes: zxing-cpp's ``Barcode.bytes`` and ZBar in binary
mode (see `PyzbarDecoder`).

Also here: `load_image` for still images (the ``kiosk decode`` command and tests).
`MotionGate` (the per-frame check that skips the decode while nobody is in view) lives in
`drivers.motion` and is importable from here too.

The decoding libraries are imported inside the back end constructors, so a missing library
is a clear `KioskError` naming what to install, and the other back end still works.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from drivers.motion import MotionGate
from kiosk.errors import KioskError

__all__ = [
    "BEFORE_ISSUE_12",
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
    """The default back end: zxing-cpp restricted to QR Code (model 1 and 2), with retries.

    Micro QR and rMQR are excluded: passes are ordinary QR codes, and ZBar reads neither,
    so both back ends accept the same symbols. ``try_invert`` stays on because phones in
    dark mode show light-on-dark codes. ``try_downscale`` is on: at 1080p it reads low-light,
    glare and blurred frames the full-size pass misses. ``try_rotate`` only finds codes
    turned by 90 degrees, which a phone held up to a kiosk is not: it changed no read and
    costs time, so it is off.

    When the first pass reads nothing, two retries, each reading frames the others miss, at
    a cost paid only on a miss:

    - ``upscale_retry``: a symbol zxing located but could not read is cut out with a
      margin, enlarged 2x and read again: small, soft or glared modules sample better (the
      distance, glare and perspective classes), and once more sharpened (``sharpen_retry``,
      an unsharp mask: focus and motion blur). The cut keeps this cheap even at 1080p.
    - ``retry_binarizer`` (GlobalHistogram): one threshold for the whole image reads some
      moiré frames the local average loses.

    Figures: benchmarks/bench_decoder.py --sweep (each option turned off alone). The
    options of the earlier decoder (no downscale, no retries) are `BEFORE_ISSUE_12`.
    """

    name = "zxing"

    def __init__(
        self,
        *,
        try_invert: bool = True,
        try_rotate: bool = False,
        try_downscale: bool = True,
        binarizer: str = "LocalAverage",
        retry_binarizer: str | None = "GlobalHistogram",
        upscale_retry: bool = True,
        sharpen_retry: bool = True,
    ) -> None:
        try:
            import zxingcpp
        except ImportError as exc:
            raise KioskError(
                "the zxing decoder needs the Python package zxing-cpp: pip install zxing-cpp"
            ) from exc
        known = zxingcpp.Binarizer.__members__
        for option in (binarizer, retry_binarizer):
            if option is not None and option not in known:
                choices = ", ".join(known)
                raise KioskError(f"unknown zxing binarizer {option!r}; choose one of: {choices}")
        options = {"try_invert": try_invert, "try_rotate": try_rotate}
        self._read = _zxing_reader(
            zxingcpp, try_downscale=try_downscale, binarizer=known[binarizer], **options
        )
        self._locate = _zxing_reader(
            zxingcpp,
            try_downscale=try_downscale,
            binarizer=known[binarizer],
            return_errors=True,
            **options,
        )
        self._retry = (
            None
            if retry_binarizer is None
            else _zxing_reader(
                zxingcpp, try_downscale=try_downscale, binarizer=known[retry_binarizer], **options
            )
        )
        self._upscale_retry = upscale_retry
        self._sharpen_retry = sharpen_retry

    def decode(self, gray: np.ndarray) -> list[bytes]:
        """Return the raw bytes of every QR code in ``gray``; see `QrDecoder.decode`."""
        gray = _check_gray(gray)
        try:
            found = self._found(gray)
        except Exception as exc:  # the boundary: a library failure becomes a KioskError
            raise KioskError(f"zxing-cpp failed on a {gray.shape} image: {exc}") from exc
        return [data for _, _, data in sorted(found)]

    def _found(self, gray: np.ndarray) -> list[tuple[int, int, bytes]]:
        """(top, left, bytes) of each code, trying the retries only when nothing was read."""
        if not self._upscale_retry:
            found = _placed(self._read(gray))
        else:
            located = self._locate(gray)
            found = _placed(b for b in located if b.valid)
            if not found:
                for barcode in located:
                    # zxing may locate one symbol twice (at two scales): read it once.
                    seen = {data for _, _, data in found}
                    found += [f for f in self._read_enlarged(gray, barcode) if f[2] not in seen]
        if not found and self._retry is not None:
            found = _placed(self._retry(gray))
        return found

    def _read_enlarged(self, gray: np.ndarray, barcode: Any) -> list[tuple[int, int, bytes]]:
        """Read a located but unreadable symbol again from its area enlarged 2x."""
        corners = _corners(barcode)
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        margin = 8 + (max(max(xs) - min(xs), max(ys) - min(ys))) // 4  # the quiet zone
        height, width = gray.shape
        top, left = max(0, min(ys) - margin), max(0, min(xs) - margin)
        area = gray[top : min(height, max(ys) + margin), left : min(width, max(xs) + margin)]
        if area.shape[0] < 16 or area.shape[1] < 16:
            return []
        enlarged = cv2.resize(area, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
        found = _placed(self._read(enlarged))
        if not found and self._sharpen_retry:
            # An unsharp mask restores edges that focus or motion blur softened.
            soft = cv2.GaussianBlur(enlarged, (0, 0), 3.0)
            found = _placed(self._read(cv2.addWeighted(enlarged, 2.5, soft, -1.5, 0)))
        return [(top + y // 2, left + x // 2, data) for y, x, data in found]


# The zxing options of the decoder before issue 12 (git main until then), for comparisons.
BEFORE_ISSUE_12: dict[str, Any] = {
    "try_downscale": False,
    "retry_binarizer": None,
    "upscale_retry": False,
    "sharpen_retry": False,
}


def _corners(barcode: Any) -> list[tuple[int, int]]:
    pos = barcode.position
    return [(p.x, p.y) for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)]


def _placed(barcodes: Any) -> list[tuple[int, int, bytes]]:
    """(top, left, raw bytes) of each barcode, for the stable top-to-bottom order."""
    placed = []
    for barcode in barcodes:
        corners = _corners(barcode)
        top = min(y for _, y in corners)
        left = min(x for x, _ in corners)
        placed.append((top, left, bytes(barcode.bytes)))
    return placed


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
    from ctypes import c_char_p, c_void_p, cast

    return cast(c_char_p(data), c_void_p)


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
