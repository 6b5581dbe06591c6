"""Strict pieces of JWS compact serialisation (RFC 7515) as credentials.md narrows it.

Only what the kiosk needs: base64url without padding, JSON objects that refuse repeated
keys, and the shape test. Verification itself lives with the credential rules.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, TypeGuard

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class Malformed(ValueError):
    """A segment is not what the page allows (becomes ``invalid_payload``)."""


def is_compact_shape(text: str) -> bool:
    """Exactly three non-empty base64url segments separated by two dots."""
    parts = text.split(".")
    return len(parts) == 3 and all(_B64URL.fullmatch(p) for p in parts)


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url; a length that no encoder produces is malformed."""
    if len(segment) % 4 == 1 or not _B64URL.fullmatch(segment):
        raise Malformed("not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Malformed("not base64url") from exc
    # Unused trailing bits must be zero: one pass, one spelling (the gate de-duplicates by text).
    if b64url_encode(raw) != segment:
        raise Malformed("not canonical base64url")
    return raw


def b64url_encode(data: bytes) -> str:
    """Encode as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise Malformed(f"repeated key {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise Malformed(f"not JSON: {name}")


def json_object(data: bytes) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object without repeated keys."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_repeats, parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Malformed("not JSON") from exc
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    return value


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer (JSON true/false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool)
