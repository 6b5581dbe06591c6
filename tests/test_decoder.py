"""Tests of drivers/decoder.py and drivers/decode_cli.py on real photographs and drawn frames."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from drivers.decode_cli import decode_files
from drivers.decoder import (
    BEFORE_ISSUE_12,
    DECODER_NAMES,
    PyzbarDecoder,
    ZxingDecoder,
    _first_video_frame,
    load_image,
    make_decoder,
)
from kiosk.errors import KioskError
from simulators.qr_corpus import KINDS, Sample, corpus, sample

# Beside the repository (../shared), or where QR_PHOTOS says (a worktree lives elsewhere).
PHOTOS = Path(
    os.environ.get("QR_PHOTOS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "qr-photos"
)

# Measured with benchmarks/bench_decoder.py: zxing-cpp 3.1.1 reads 52 of the 55 photographs,
# ZBar 0.23.92 reads 50. The floors sit two below, so a library update that loses a read or
# two does not fail CI, and a real regression does.
PHOTO_FLOORS = {"zxing": 50, "pyzbar": 48}

# About the length of a signed pass (credentials.md); only base64url characters and dots.
PASS_TEXT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6Ims3In0."
    "eyJpc3MiOiJhc2h5cS5reiIsInN1YiI6Imlpbjo5MjEwMjkzNTA4NTEiLCJzdCI6ImdyZWVuIiwiaWF0IjoxNzYw"
    "MDAwMDAwLCJleHAiOjE3NjAwMDAzMDAsImp0aSI6IkFiQ2RFZkdoMTIzNCJ9."
    "3q2-7wAAAAB0ZXN0LXNpZ25hdHVyZS1ub3QtcmVhbC1qdXN0LTY0LWJ5dGVzLWxvbmctZm9yLXRoZS1iZW5jaA"
)


@pytest.fixture(params=DECODER_NAMES)
def decoder_name(request: pytest.FixtureRequest) -> str:
    return request.param


def expected_forms(text: str) -> set[bytes]:
    """The text as raw bytes in each charset a QR code may carry it in without an ECI."""
    forms = set()
    for charset in ("utf-8", "shift_jis", "cp932", "iso-8859-1", "gb2312"):
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(text.encode(charset))
    return forms


def code_modules(text: str, *, micro: bool = False) -> np.ndarray:
    """The symbol with a 4-module quiet zone: 0 for dark, 255 for light, one pixel a module."""
    symbol = segno.make_micro(text) if micro else segno.make(text, error="m", micro=False)
    return np.where(np.pad(np.array(symbol.matrix, np.uint8), 4) == 1, 0, 255).astype(np.uint8)


def place(
    frame: np.ndarray, modules: np.ndarray, *, centre: tuple[int, int], module_px: int, angle: float
) -> np.ndarray:
    """Draw ``modules`` scaled and rotated by ``angle`` degrees onto ``frame`` at ``centre``."""
    side = modules.shape[0] * module_px
    code = cv2.resize(modules, (side, side), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[:, 2] += np.array(centre) - side / 2
    size = (frame.shape[1], frame.shape[0])
    mask = cv2.warpAffine(np.ones_like(code), matrix, size)
    drawn = cv2.warpAffine(code, matrix, size)
    return frame * (1 - mask) + drawn * mask


def camera_frame(
    texts: list[tuple[str, tuple[int, int]]] = (),
    *,
    size: tuple[int, int] = (640, 480),
    module_px: int = 4,
    angle: float = 12.0,
    inverted: bool = False,
    micro: bool = False,
    seed: int = 1,
) -> np.ndarray:
    """A gray camera-like frame with the given codes: rotated, blurred, noisy, dim.

    Deterministic: the noise comes from a seeded generator.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    frame = np.tile(np.linspace(70, 150, width, dtype=np.float32), (height, 1))
    frame[40:120, 30:200] = 200.0  # a poster on the wall behind
    for text, centre in texts:
        modules = code_modules(text, micro=micro)
        if inverted:
            modules = 255 - modules
        frame = place(frame, modules, centre=centre, module_px=module_px, angle=angle)
    frame = 25 + frame * (210 / 255)  # a screen is neither black nor white
    frame = cv2.GaussianBlur(frame, (0, 0), 0.9)
    frame += rng.normal(0, 4, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


# --- real photographs -------------------------------------------------------------------


def test_reads_the_real_photographs(decoder_name: str) -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"the QR photographs are not at {PHOTOS} (../shared/testdata beside the repo)")
    images = sorted(p for p in PHOTOS.glob("qrcode-*/*") if p.suffix in (".png", ".jpg", ".gif"))
    assert len(images) >= 50
    decoder = make_decoder(decoder_name)
    read, missed = 0, []
    for image in images:
        # Bytes first: read_text would turn the codes' CR LF into LF.
        expected = expected_forms(image.with_suffix(".txt").read_bytes().decode("utf-8"))
        if expected & set(decoder.decode(load_image(image))):
            read += 1
        else:
            missed.append(f"{image.parent.name}/{image.name}")
    assert read >= PHOTO_FLOORS[decoder_name], f"{decoder_name} read {read}, missed {missed}"


# --- drawn frames -----------------------------------------------------------------------


def test_reads_a_rotated_blurred_noisy_code(decoder_name: str) -> None:
    frame = camera_frame([(PASS_TEXT, (330, 250))])
    assert make_decoder(decoder_name).decode(frame) == [PASS_TEXT.encode("ascii")]


def test_reads_a_light_on_dark_code_from_a_phone_in_dark_mode(decoder_name: str) -> None:
    frame = camera_frame([(PASS_TEXT, (330, 250))], inverted=True, angle=-8.0)
    assert make_decoder(decoder_name).decode(frame) == [PASS_TEXT.encode("ascii")]


def test_zxing_needs_try_invert_for_dark_mode() -> None:
    frame = camera_frame([(PASS_TEXT, (330, 250))], inverted=True, angle=-8.0)
    assert ZxingDecoder(try_invert=False).decode(frame) == []


def test_pyzbar_reads_dark_mode_only_through_its_inverted_pass() -> None:
    frame = camera_frame([(PASS_TEXT, (330, 250))], inverted=True, angle=-8.0)
    assert PyzbarDecoder(invert_pass=False).decode(frame) == []
    assert PyzbarDecoder(invert_pass=True).decode(frame) == [PASS_TEXT.encode("ascii")]


def test_a_frame_without_a_code_gives_nothing(decoder_name: str) -> None:
    assert make_decoder(decoder_name).decode(camera_frame([])) == []


def test_returns_raw_bytes_not_a_charset_guess(decoder_name: str) -> None:
    # Shift_JIS bytes in byte mode: ZBar's text mode would turn them into UTF-8.
    raw = "テスト QR".encode("shift_jis")
    symbol = segno.make(raw, error="m", micro=False, encoding=None)
    modules = np.where(np.pad(np.array(symbol.matrix, np.uint8), 4) == 1, 0, 255)
    frame = cv2.resize(modules.astype(np.uint8), None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST)
    assert make_decoder(decoder_name).decode(frame) == [raw]


def test_several_codes_come_top_first(decoder_name: str) -> None:
    frame = camera_frame(
        [("lower code", (400, 360)), ("upper code", (220, 110))],
        module_px=5,
        angle=5.0,
    )
    assert make_decoder(decoder_name).decode(frame) == [b"upper code", b"lower code"]


def test_reads_only_qr_codes_not_micro_qr(decoder_name: str) -> None:
    frame = camera_frame([("12345", (320, 240))], micro=True, module_px=8, angle=0.0)
    # zxing-cpp would read it with every format allowed: the restriction is what is tested.
    import zxingcpp

    assert [b.bytes for b in zxingcpp.read_barcodes(frame)] == [b"12345"]
    assert make_decoder(decoder_name).decode(frame) == []


def test_a_frame_that_is_not_2d_uint8_is_a_clear_error(decoder_name: str) -> None:
    decoder = make_decoder(decoder_name)
    with pytest.raises(KioskError, match="2-D uint8 gray image"):
        decoder.decode(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(KioskError, match="2-D uint8 gray image"):
        decoder.decode(np.zeros((48, 64), np.float32))


def test_a_view_of_a_larger_frame_is_read(decoder_name: str) -> None:
    frame = camera_frame([(PASS_TEXT, (330, 250))])
    crop = frame[:, 50:]  # not C-contiguous
    assert make_decoder(decoder_name).decode(crop) == [PASS_TEXT.encode("ascii")]


# --- choosing a back end ----------------------------------------------------------------


def test_make_decoder_by_name() -> None:
    assert DECODER_NAMES == ("zxing", "pyzbar")
    assert make_decoder("zxing").name == "zxing"
    assert make_decoder("pyzbar").name == "pyzbar"


def test_an_unknown_decoder_names_itself_and_the_choices() -> None:
    with pytest.raises(KioskError, match=r"unknown decoder 'zbar'; choose one of: zxing, pyzbar"):
        make_decoder("zbar")


def test_a_missing_zxing_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # makes the import fail
    with pytest.raises(KioskError, match="pip install zxing-cpp"):
        make_decoder("zxing")


def test_a_missing_pyzbar_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    with pytest.raises(KioskError, match="pip install pyzbar"):
        make_decoder("pyzbar")


def test_a_missing_libzbar_says_which_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyzbar
    import pyzbar.zbar_library

    def no_library() -> None:
        raise ImportError("Unable to find zbar shared library")

    # The shared library is loaded when pyzbar.wrapper is first imported.
    monkeypatch.delitem(sys.modules, "pyzbar.wrapper")
    monkeypatch.delattr(pyzbar, "wrapper")
    monkeypatch.setattr(pyzbar.zbar_library, "load", no_library)
    with pytest.raises(KioskError, match="libzbar0: apt-get install libzbar0"):
        make_decoder("pyzbar")


# --- image files ------------------------------------------------------------------------


def write_png(path: Path, text: str) -> Path:
    cv2.imwrite(str(path), cv2.resize(code_modules(text), None, fx=5, fy=5, interpolation=0))
    return path


def test_load_image_gives_a_gray_array(tmp_path: Path) -> None:
    image = write_png(tmp_path / "code.png", "hello")
    gray = load_image(image)
    assert gray.ndim == 2 and gray.dtype == np.uint8
    assert make_decoder("zxing").decode(gray) == [b"hello"]


def test_load_image_reads_gif(tmp_path: Path) -> None:
    gray = cv2.resize(code_modules("gif code"), None, fx=5, fy=5, interpolation=0)
    ok, data = cv2.imencode(".gif", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    if not ok:
        pytest.skip("this OpenCV build cannot write GIF")
    gif = tmp_path / "code.gif"
    gif.write_bytes(data.tobytes())
    assert make_decoder("zxing").decode(load_image(gif)) == [b"gif code"]
    # The fallback for OpenCV builds without the GIF codec: FFmpeg through VideoCapture.
    frame = _first_video_frame(str(gif))
    assert frame is not None and frame.ndim == 2
    assert make_decoder("zxing").decode(frame) == [b"gif code"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the file"),
        (b"", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n this is not a PNG", "not a readable image"),
        (b"GIF89a this is not a GIF", "not a readable image"),
    ],
)
def test_load_image_names_the_file_it_cannot_read(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "photo.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KioskError, match=message) as error:
        load_image(path)
    assert str(path) in str(error.value)


# --- decode_files -----------------------------------------------------------------------


def test_decode_files_prints_one_json_line_per_file(tmp_path: Path, decoder_name: str) -> None:
    good = write_png(tmp_path / "good.png", "Ashyq ✓")
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.full((100, 100), 200, np.uint8))
    out = io.StringIO()
    assert decode_files([str(good), str(empty)], decoder_name, out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"file": str(good), "codes": ["Ashyq ✓"]},
        {"file": str(empty), "codes": []},
    ]


def test_decode_files_reports_bad_files_and_goes_on(tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png", "still read")
    missing = tmp_path / "missing.png"
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = io.StringIO()
    status = decode_files([str(missing), str(corrupt), str(good)], out=out)
    assert status == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["file"] for line in lines] == [str(missing), str(corrupt), str(good)]
    assert "cannot read the file" in lines[0]["error"]
    assert "not a readable image" in lines[1]["error"]
    assert lines[2] == {"file": str(good), "codes": ["still read"]}


def test_decode_files_shows_bytes_that_are_not_utf8_replaced(tmp_path: Path) -> None:
    raw = b"caf\xe9"  # ISO-8859-1, not UTF-8
    symbol = segno.make(raw, micro=False, encoding=None)
    modules = np.where(np.pad(np.array(symbol.matrix, np.uint8), 4) == 1, 0, 255)
    image = tmp_path / "latin1.png"
    cv2.imwrite(str(image), cv2.resize(modules.astype(np.uint8), None, fx=5, fy=5, interpolation=0))
    out = io.StringIO()
    assert decode_files([str(image)], out=out) == 0
    assert json.loads(out.getvalue()) == {"file": str(image), "codes": ["caf\ufffd"]}


def test_decode_files_writes_to_stdout_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = write_png(tmp_path / "code.png", "to stdout")
    assert decode_files([str(image)]) == 0
    assert json.loads(capsys.readouterr().out)["codes"] == ["to stdout"]


def test_decode_files_with_an_unknown_decoder_raises() -> None:
    with pytest.raises(KioskError, match="unknown decoder"):
        decode_files(["x.png"], "opencv", out=io.StringIO())


# --- the generated corpus of camera frames ----------------------------------------------


@pytest.fixture(scope="module")
def camera_corpus() -> list[Sample]:
    """One frame of every degradation class at 480p and 720p (seeded: always the same)."""
    return list(corpus(1, sizes=((640, 480), (1280, 720)), seed=0))


def reads_per_kind(decode: Callable[[np.ndarray], list[bytes]], samples: list[Sample]):
    counts: dict[str, int] = dict.fromkeys(KINDS, 0)
    for frame in samples:
        counts[frame.kind] += frame.expected in decode(frame.gray)
    return counts


def zxing_with_default_options(gray: np.ndarray) -> list[bytes]:
    import zxingcpp

    return [bytes(barcode.bytes) for barcode in zxingcpp.read_barcodes(gray)]


def test_reads_more_camera_frames_than_zxing_with_its_default_options(camera_corpus) -> None:
    ours = reads_per_kind(ZxingDecoder().decode, camera_corpus)
    theirs = reads_per_kind(zxing_with_default_options, camera_corpus)
    assert all(ours[kind] >= theirs[kind] for kind in KINDS), (ours, theirs)
    assert sum(ours.values()) > sum(theirs.values())


def test_reads_more_camera_frames_than_the_decoder_before_issue_12(camera_corpus) -> None:
    after = reads_per_kind(ZxingDecoder().decode, camera_corpus)
    before = reads_per_kind(ZxingDecoder(**BEFORE_ISSUE_12).decode, camera_corpus)
    assert sum(after.values()) > sum(before.values()), (after, before)


def test_no_option_turned_off_reads_more_than_the_full_chain(camera_corpus) -> None:
    # Each of try_downscale, the enlarged second look and the second binarizer reads frames
    # of the benchmark's larger corpus the others miss (bench_decoder.py --sweep).
    full = reads_per_kind(ZxingDecoder().decode, camera_corpus)
    for options in (
        {"upscale_retry": False},
        {"retry_binarizer": None},
        {"try_downscale": False},
    ):
        partial = reads_per_kind(ZxingDecoder(**options).decode, camera_corpus)
        assert sum(full.values()) >= sum(partial.values()), options


def test_an_unknown_retry_binarizer_is_named() -> None:
    with pytest.raises(KioskError, match="unknown zxing binarizer 'Fancy'"):
        ZxingDecoder(retry_binarizer="Fancy")


@pytest.mark.parametrize("kind, index", [("focus_blur", 9), ("motion_blur", 10)])
def test_a_blurred_code_is_read_from_its_enlarged_sharpened_area(kind: str, index: int) -> None:
    frame = sample(kind, (640, 480), index, seed=0)
    assert frame.expected not in ZxingDecoder(sharpen_retry=False).decode(frame.gray)
    assert ZxingDecoder().decode(frame.gray) == [frame.expected]  # once, not per location
