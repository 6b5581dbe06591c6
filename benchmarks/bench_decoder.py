"""Benchmark the QR decoder back ends and the motion gate; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_decoder.py [--frames N] [--sweep]

For each back end: read rate and p50/p95 decode time on the real photographs
(../shared/testdata/qr-photos) and on a synthetic corpus of camera-like frames (a signed
pass of about 250 characters, drawn with segno at a realistic size in 640x480 and 1280x720
frames, rotated, warped, blurred, noisy, a quarter of them light-on-dark as phones in dark
mode show them). Then the cost of `MotionGate` per idle frame against a full decode.
``--sweep`` also compares zxing-cpp's options (try_rotate, try_downscale, binarizer).

A read counts only when the exact expected bytes come back. Photographed codes without an
ECI carry their text in a legacy charset (Shift_JIS, ISO-8859-1, ...), and the decoders
return raw bytes, so the expected text is compared in each of those encodings.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import segno

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.decoder import (  # noqa: E402  (the repo root is put on the path just above)
    MotionGate,
    PyzbarDecoder,
    QrDecoder,
    ZxingDecoder,
    load_image,
)

PHOTOS = REPO.parent / "shared" / "testdata" / "qr-photos"
LEGACY_CHARSETS = ("utf-8", "shift_jis", "cp932", "iso-8859-1", "gb2312")

Sample = tuple[str, np.ndarray, set[bytes]]


def expected_forms(text: str) -> set[bytes]:
    """The expected text as raw bytes in each charset a QR code may use without an ECI."""
    forms = set()
    for charset in LEGACY_CHARSETS:
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(text.encode(charset))
    return forms


def photo_samples() -> list[Sample]:
    """The real photographs with their expected text, or [] when the data is absent."""
    samples = []
    for image in sorted(PHOTOS.glob("qrcode-*/*")):
        if image.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif"):
            continue
        # Bytes, then decode: read_text would turn the codes' CR LF into LF.
        text = image.with_suffix(".txt").read_bytes().decode("utf-8")
        samples.append(
            (f"{image.parent.name}/{image.name}", load_image(image), {*expected_forms(text)})
        )
    return samples


def signed_pass_text(rng: np.random.Generator) -> str:
    """A JWS shaped like an Ashyq pass (credentials.md), about 250 characters."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    iat = 1_760_000_000 + int(rng.integers(0, 10_000_000))
    header = {"alg": "EdDSA", "kid": "k7"}
    claims = {
        "iss": "ashyq.kz",
        "sub": "iin:921029350851",
        "st": "green",
        "iat": iat,
        "exp": iat + 300,
        "jti": b64(rng.bytes(12)),
    }
    compact = json.dumps(header, separators=(",", ":")), json.dumps(claims, separators=(",", ":"))
    return f"{b64(compact[0].encode())}.{b64(compact[1].encode())}.{b64(rng.bytes(64))}"


def code_image(text: str, module_px: float) -> np.ndarray:
    """The QR code for ``text`` (error level M, as a pass app would use) with its quiet zone."""
    qr = segno.make(text, error="m", boost_error=False, micro=False)
    matrix = np.array(qr.matrix, dtype=np.uint8)
    modules = np.pad(matrix, 4)  # the 4-module quiet zone the standard asks for
    image = np.where(modules == 1, 0, 255).astype(np.uint8)
    side = round(modules.shape[0] * module_px)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_NEAREST)


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A dim, unevenly lit scene with a few objects: not a clean white page."""
    width, height = size
    ramp = np.linspace(rng.uniform(40, 110), rng.uniform(90, 180), width, dtype=np.float32)
    scene = np.tile(ramp, (height, 1))
    for _ in range(6):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(20, width // 3)), int(rng.integers(20, height // 3))
        scene[y : y + h, x : x + w] = rng.uniform(20, 220)
    return scene


def camera_frame(
    rng: np.random.Generator,
    text: str,
    size: tuple[int, int],
    inverted: bool,
    fill: tuple[float, float] = (0.35, 0.5),
) -> tuple[np.ndarray, float]:
    """A gray frame of ``size`` showing the code for ``text`` as a phone held to a camera.

    Returns the frame and the size of one module in pixels.
    """
    width, height = size
    # A phone screen at the usual distance: the code fills 35-50 % of the frame height.
    code_side = rng.uniform(*fill) * height
    qr = segno.make(text, error="m", boost_error=False, micro=False)
    module_px = code_side / (qr.symbol_size(border=4)[0])
    code = code_image(text, module_px).astype(np.float32)
    if inverted:
        code = 255 - code
    # Screens show neither pure black nor pure white, and glare lifts the dark.
    dark, light = rng.uniform(15, 70), rng.uniform(170, 245)
    code = dark + (code / 255.0) * (light - dark)
    side = code.shape[0]
    angle = np.deg2rad(rng.uniform(-15, 15))
    centre = np.array([rng.uniform(0.35, 0.65) * width, rng.uniform(0.4, 0.6) * height])
    corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32) - side / 2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    placed = corners @ rotation.T + centre
    # A slight tilt of the phone: corners moved by up to 4 % of the side.
    placed += rng.uniform(-0.04, 0.04, placed.shape) * side
    warp = cv2.getPerspectiveTransform(
        np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32),
        placed.astype(np.float32),
    )
    frame = background(rng, size)
    mask = cv2.warpPerspective(np.ones_like(code), warp, size, flags=cv2.INTER_LINEAR)
    drawn = cv2.warpPerspective(code, warp, size, flags=cv2.INTER_LINEAR)
    frame = frame * (1 - mask) + drawn * mask
    frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.4))  # focus and motion
    frame += rng.normal(0, rng.uniform(2, 7), frame.shape)  # sensor noise
    return np.clip(frame, 0, 255).astype(np.uint8), module_px


def synthetic_samples(
    count: int, size: tuple[int, int], seed: int, fill: tuple[float, float] = (0.35, 0.5)
) -> list[Sample]:
    """``count`` camera-like frames of ``size``; every fourth shows a light-on-dark code."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        text = signed_pass_text(rng)
        inverted = i % 4 == 3
        frame, module_px = camera_frame(rng, text, size, inverted, fill)
        label = f"#{i} ({module_px:.1f} px/module{', inverted' if inverted else ''})"
        samples.append((label, frame, {text.encode("ascii")}))
    return samples


def idle_frames(count: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """An empty entrance: one still scene with sensor noise only."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(background(rng, size), (0, 0), 1.0)
    return [
        np.clip(scene + rng.normal(0, 3, scene.shape), 0, 255).astype(np.uint8)
        for _ in range(count)
    ]


def percentile(times: Sequence[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(decode: Callable[[np.ndarray], list[bytes]], samples: list[Sample], rounds: int):
    """(reads, misses, times in ms): each sample decoded ``rounds`` times, read rate of round 1."""
    decode(samples[0][1])  # warm-up: first call loads tables
    reads, misses, times = 0, [], []
    for round_ in range(rounds):
        for label, image, expected in samples:
            start = time.perf_counter()
            codes = decode(image)
            times.append((time.perf_counter() - start) * 1000)
            if round_ == 0:
                if expected & set(codes):
                    reads += 1
                else:
                    misses.append(label)
    return reads, misses, times


def report(title: str, decode, samples: list[Sample], rounds: int, show_misses: bool) -> None:
    reads, misses, times = measure(decode, samples, rounds)
    print(
        f"  {title:44s} read {reads:3d}/{len(samples):<3d} ({100 * reads / len(samples):5.1f} %)"
        f"  p50 {statistics.median(times):7.2f} ms  p95 {percentile(times, 0.95):7.2f} ms"
    )
    if show_misses and misses:
        print(f"    missed: {', '.join(misses)}")


def time_per_call(function: Callable[[], object], calls: int) -> float:
    """Median milliseconds per call."""
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_gate(decoders: list[QrDecoder]) -> None:
    print("\nMotionGate against a full decode (median ms per frame)")
    for size in ((640, 480), (1280, 720)):
        bench_gate_at(size, decoders)


def bench_gate_at(size: tuple[int, int], decoders: list[QrDecoder]) -> None:
    idle = idle_frames(200, size, seed=7)
    gate = MotionGate()
    frames = iter(idle * 3)
    gate_ms = time_per_call(lambda: gate.should_decode(next(frames)), 400)
    counting_gate = MotionGate()
    opened = sum(counting_gate.should_decode(frame) for frame in idle)
    code_frame = synthetic_samples(1, size, seed=11)[0][1]
    line = f"  {size[0]}x{size[1]}: gate {gate_ms:.3f} ms, opens {opened}/{len(idle)} idle frames"
    for decoder in decoders:
        idle_ms = time_per_call(lambda d=decoder: d.decode(idle[0]), 30)
        code_ms = time_per_call(lambda d=decoder: d.decode(code_frame), 30)
        line += f"; {decoder.name} decode idle {idle_ms:.2f} ms, with code {code_ms:.2f} ms"
    print(line)
    still_gate = MotionGate()
    still_gate.should_decode(code_frame)
    still_gate.should_decode(code_frame)
    print(f"    a code held still: the gate says {still_gate.last_reason}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="synthetic frames per size")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds over each corpus")
    parser.add_argument("--sweep", action="store_true", help="compare zxing-cpp options")
    parser.add_argument("--misses", action="store_true", help="list the codes not read")
    args = parser.parse_args(argv)

    back_ends: list[tuple[str, QrDecoder]] = [
        ("zxing (default options)", ZxingDecoder()),
        ("pyzbar (with inverted second pass)", PyzbarDecoder()),
        ("pyzbar (no inverted pass)", PyzbarDecoder(invert_pass=False)),
    ]
    if args.sweep:
        for rotate in (False, True):
            for downscale in (False, True):
                for binarizer in ("LocalAverage", "GlobalHistogram"):
                    title = f"zxing rotate={rotate:d} downscale={downscale:d} {binarizer}"
                    decoder = ZxingDecoder(
                        try_rotate=rotate, try_downscale=downscale, binarizer=binarizer
                    )
                    back_ends.append((title, decoder))
        back_ends.append(("zxing try_invert=0 (misses dark mode)", ZxingDecoder(try_invert=False)))

    corpora: list[tuple[str, list[Sample]]] = []
    photos = photo_samples()
    if photos:
        corpora.append((f"Real photographs ({PHOTOS})", photos))
    else:
        print(f"(no photographs at {PHOTOS}; skipped)")
    for size, seed in (((640, 480), 1), ((1280, 720), 2)):
        frames = synthetic_samples(args.frames, size, seed)
        corpora.append((f"Synthetic camera frames {size[0]}x{size[1]}", frames))
    if args.sweep:
        # A phone held close: the code fills most of the frame (where try_downscale may help).
        frames = synthetic_samples(args.frames, (1280, 720), 3, fill=(0.6, 0.8))
        corpora.append(("Synthetic close-ups 1280x720", frames))

    for title, samples in corpora:
        print(f"\n{title}: {len(samples)} images, {args.rounds} timing rounds")
        for name, decoder in back_ends:
            report(name, decoder.decode, samples, args.rounds, args.misses)

    bench_gate([ZxingDecoder(), PyzbarDecoder()])


if __name__ == "__main__":
    main()
