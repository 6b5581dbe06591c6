"""Benchmark the QR decoders on camera frames and photographs; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_decoder.py [--per-kind 20] [--seed 7] [--sweep] [--misses]

The corpus (`simulators.qr_corpus`, generated in memory from the seed, nothing written) has
``--per-kind`` frames of each degradation class (perspective, distance, motion and focus
blur, low light, glare, screen moiré, heavy JPEG, dark mode, fingers, busy background, and
plain) at 640x480, 1280x720 and 1920x1080, showing real passes and bare IINs. Read rates per
class and the median and p95 decode time (process CPU time per call) of:

- zxing-cpp called with its default options (all formats, rotate, downscale, invert);
- the kiosk's zxing path before issue 12 (`drivers.decoder.BEFORE_ISSUE_12`);
- the kiosk's zxing path now (downscale; on a miss an enlarged, then sharpened second look
  at a located symbol, and a second binarizer);
- pyzbar with its inverted second pass (the other back end);

then the same on the real photographs (../shared/testdata/qr-photos, or $QR_PHOTOS).
``--sweep`` adds each option of the kiosk's path turned off alone. A read counts only when
the exact expected bytes come back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.decoder import (  # noqa: E402  (the repo root is put on the path just above)
    BEFORE_ISSUE_12,
    PyzbarDecoder,
    ZxingDecoder,
    load_image,
)
from simulators.qr_corpus import KINDS, SIZES, corpus  # noqa: E402

PHOTOS = Path(os.environ.get("QR_PHOTOS") or REPO.parent / "shared" / "testdata" / "qr-photos")
LEGACY_CHARSETS = ("utf-8", "shift_jis", "cp932", "iso-8859-1", "gb2312")

Decode = Callable[[np.ndarray], list[bytes]]
Item = tuple[str, str, np.ndarray, set[bytes]]  # (class, label, gray, expected forms)


def expected_forms(text: str) -> set[bytes]:
    """The expected text as raw bytes in each charset a QR code may use without an ECI."""
    forms = set()
    for charset in LEGACY_CHARSETS:
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(text.encode(charset))
    return forms


def photo_items() -> list[Item]:
    items = []
    for image in sorted(PHOTOS.glob("qrcode-*/*")):
        if image.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif"):
            continue
        # Bytes, then decode: read_text would turn the codes' CR LF into LF.
        text = image.with_suffix(".txt").read_bytes().decode("utf-8")
        label = f"{image.parent.name}/{image.name}"
        items.append(("photo", label, load_image(image), expected_forms(text)))
    return items


def zxing_default() -> Decode:
    import zxingcpp

    return lambda gray: [bytes(b.bytes) for b in zxingcpp.read_barcodes(gray)]


def decoders(sweep: bool) -> list[tuple[str, Decode]]:
    chosen: list[tuple[str, Decode]] = [
        ("zxing-cpp default options", zxing_default()),
        ("kiosk before (main's options)", ZxingDecoder(**BEFORE_ISSUE_12).decode),
        ("kiosk now", ZxingDecoder().decode),
        ("pyzbar (inverted 2nd pass)", PyzbarDecoder().decode),
    ]
    if sweep:
        chosen += [
            ("  now without try_downscale", ZxingDecoder(try_downscale=False).decode),
            ("  now without enlarged look", ZxingDecoder(upscale_retry=False).decode),
            ("  now without 2nd binarizer", ZxingDecoder(retry_binarizer=None).decode),
            ("  now without sharpened look", ZxingDecoder(sharpen_retry=False).decode),
            ("  now with try_rotate", ZxingDecoder(try_rotate=True).decode),
        ]
    return chosen


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    title: str,
    items: list[Item],
    chosen: list[tuple[str, Decode]],
    classes: Sequence[str],
    misses: bool,
) -> None:
    print(f"\n{title}: {len(items)} images")
    width = max(len(c) for c in classes)
    header = "  ".join(f"{c[:width]:>{min(width, 9)}s}" for c in classes)
    print(f"  {'':30s} {'all':>9s}  {header}   p50 ms   p95 ms")
    for name, decode in chosen:
        decode(items[0][2])  # warm-up: the first call loads tables
        per = dict.fromkeys(classes, 0)
        totals = dict.fromkeys(classes, 0)
        times, missed = [], []
        for kind, label, gray, expected in items:
            start = time.process_time()
            codes = decode(gray)
            times.append((time.process_time() - start) * 1000)
            totals[kind] += 1
            if expected & set(codes):
                per[kind] += 1
            else:
                missed.append(label)
        read = sum(per.values())
        cells = "  ".join(
            f"{100 * per[c] / totals[c] if totals[c] else 0:{min(width, 9)}.0f}" for c in classes
        )
        print(
            f"  {name:30s} {read:4d} {100 * read / len(items):3.0f}%  {cells}"
            f"  {statistics.median(times):7.2f}  {percentile(times, 0.95):7.2f}"
        )
        if misses and missed:
            print(f"    missed: {', '.join(missed)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=20, help="frames per class and size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sweep", action="store_true", help="each option turned off alone")
    parser.add_argument("--misses", action="store_true", help="list the images not read")
    args = parser.parse_args(argv)
    chosen = decoders(args.sweep)

    start = time.monotonic()
    frames = list(corpus(args.per_kind, seed=args.seed))
    print(
        f"corpus: {len(frames)} frames, seed {args.seed}, made in {time.monotonic() - start:.0f} s"
    )
    items: list[Item] = [(s.kind, s.label, s.gray, {s.expected}) for s in frames]
    run("Camera frames, all sizes (read % per class)", items, chosen, KINDS, args.misses)
    for size in SIZES:
        subset = [i for i, s in zip(items, frames, strict=True) if s.size == size]
        run(f"Camera frames {size[0]}x{size[1]}", subset, chosen, KINDS, args.misses)
    photos = photo_items() if PHOTOS.is_dir() else []
    if photos:
        run(f"Real photographs ({PHOTOS})", photos, chosen, ("photo",), args.misses)
    else:
        print(f"\n(no photographs at {PHOTOS}; skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
