"""Trusted key sets (credentials.md section 3): Ed25519 entries of a JWK Set, by kid."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.errors import KioskError
from kiosk.jws import Malformed, b64url_decode

log = logging.getLogger(__name__)


class KeySet:
    """The usable Ed25519 keys of one JWK Set, looked up by ``kid``."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, source: str = "") -> None:
        self._keys = dict(keys)
        self.source = source

    def get(self, kid: object) -> Ed25519PublicKey | None:
        """The key with this id, or None (also for a kid that is not a string)."""
        return self._keys.get(kid) if isinstance(kid, str) else None

    def __len__(self) -> int:
        return len(self._keys)

    def kids(self) -> list[str]:
        """The key ids, sorted (for `kiosk doctor` and logs)."""
        return sorted(self._keys)

    @classmethod
    def from_document(cls, doc: Any, *, source: str) -> KeySet:
        """Build from a parsed ``{"keys": [...]}``; unusable entries are skipped with a warning."""
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise KioskError(f'{source}: not a JWK Set (expected {{"keys": [...]}})')
        keys: dict[str, Ed25519PublicKey] = {}
        for i, entry in enumerate(doc["keys"]):
            key = _ed25519(entry)
            if key is None:
                log.warning("%s: key %d is not a usable Ed25519 key, ignored", source, i)
                continue
            keys[entry["kid"]] = key
        return cls(keys, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeySet:
        """Read a JWK Set file; an unreadable or malformed file is a KioskError naming it."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise KioskError(f"{path}: cannot read key set: {exc.strerror}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise KioskError(f"{path}: key set is not JSON: {exc}") from exc
        return cls.from_document(doc, source=str(path))


def _ed25519(entry: Any) -> Ed25519PublicKey | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        return None
    kid, x = entry.get("kid"), entry.get("x")
    if not isinstance(kid, str) or not kid or not isinstance(x, str):
        return None
    try:
        raw = b64url_decode(x)
    except Malformed:
        return None
    if len(raw) != 32:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


def save_last_good(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Keep a copy of a fetched key set on disk, atomically, for verifying passes offline."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".keys-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        # A full disk must not leave half-written copies behind; the old copy stays.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
