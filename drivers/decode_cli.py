"""``kiosk decode IMAGE...``: decode QR codes in image files and print one JSON line each.

A tool for the installer and for tests: it shows what the camera path would read from a
photograph. It prints the codes' text, so use it on test images, not on people's passes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from drivers.decoder import QrDecoder, load_image, make_decoder
from kiosk.errors import KioskError


def decode_files(
    paths: Sequence[str], decoder_name: str = "zxing", out: TextIO | None = None
) -> int:
    """Decode each image in ``paths`` and write one JSON line per file to ``out``.

    A line is ``{"file": path, "codes": [text, ...]}``, each code's raw bytes shown as UTF-8
    with undecodable bytes replaced, or ``{"file": path, "error": "..."}`` for a missing or
    unreadable file. Every file gets its line, whatever happened to the others.

    Returns the exit status: 0, or 1 when any file had an error. An unknown decoder name or a
    missing decoding library raises `KioskError` before any file is read.
    """
    # sys.stdout is looked up at call time, not bound at import, so redirection works.
    stream = sys.stdout if out is None else out
    decoder = make_decoder(decoder_name)
    status = 0
    for path in paths:
        line = _decode_one(decoder, path)
        if "error" in line:
            status = 1
        stream.write(json.dumps(line, ensure_ascii=False) + "\n")
    stream.flush()
    return status


def _decode_one(decoder: QrDecoder, path: str) -> dict[str, object]:
    try:
        codes = decoder.decode(load_image(path))
    except KioskError as exc:
        return {"file": path, "error": str(exc)}
    # Display only: the core applies its own, strict UTF-8 rule to the raw bytes.
    return {"file": path, "codes": [code.decode("utf-8", errors="replace") for code in codes]}
