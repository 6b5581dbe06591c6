"""Trusted key sets (credentials.md section 3): usable Ed25519 entries, the rest ignored."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import jwks as jwks_module
from kiosk.errors import KioskError
from kiosk.jwks import KeySet, save_last_good
from simulators.issuer import SIM_PASS_JWKS, PassIssuer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def okp(kid: str, key: Ed25519PrivateKey | None = None, /, **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": kid,
        "x": b64(raw_public(key or Ed25519PrivateKey.generate())),
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "kiosk.jwks"]


# -- usable entries -------------------------------------------------------------------------


def test_shipped_pass_key_set_verifies_the_shipped_issuer() -> None:
    keys = KeySet.load(SIM_PASS_JWKS)
    assert keys.kids() == ["sim1"]
    assert len(keys) == 1
    assert keys.source == str(SIM_PASS_JWKS)
    issuer = PassIssuer.load()
    public = keys.get("sim1")
    assert public is not None
    public.verify(issuer.private_key.sign(b"hello"), b"hello")  # raises if not the same key


def test_several_usable_entries_by_kid(caplog: pytest.LogCaptureFixture) -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    doc = {"keys": [okp("a", a), okp("b", b, use="sig", alg="EdDSA")]}  # extra members: fine
    with caplog.at_level(logging.WARNING):
        keys = KeySet.from_document(doc, source="test")
    assert keys.kids() == ["a", "b"]
    assert _warnings(caplog) == []
    for kid, private in (("a", a), ("b", b)):
        public = keys.get(kid)
        assert public is not None
        assert public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ) == raw_public(private)


@pytest.mark.parametrize("kid", [None, 1, ["a"], "", "A", "missing"])
def test_get_unknown_or_non_string_kid(kid: Any) -> None:
    keys = KeySet.from_document({"keys": [okp("a")]}, source="test")
    assert keys.get(kid) is None


def test_empty_set_is_not_an_error() -> None:
    keys = KeySet.from_document({"keys": []}, source="test")
    assert len(keys) == 0
    assert keys.get("a") is None


# -- unusable entries: ignored with a warning -----------------------------------------------


UNUSABLE = {
    "rsa": {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"},
    "ec": {"kty": "EC", "crv": "P-256", "kid": "e", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)},
    "x25519": okp("x", crv="X25519"),
    "ed448": okp("d", crv="Ed448", x=b64(b"\x01" * 57)),
    "oct": {"kty": "oct", "kid": "o", "k": b64(b"secret")},
    "okp lowercase": okp("l", kty="okp"),
    "ed25519 lowercase": okp("m", crv="ed25519"),
    "no kty": {"crv": "Ed25519", "kid": "n", "x": b64(b"\x01" * 32)},
    "x 31 bytes": okp("s", x=b64(b"\x01" * 31)),
    "x 33 bytes": okp("t", x=b64(b"\x01" * 33)),
    "x 64 bytes": okp("u", x=b64(b"\x01" * 64)),
    "x empty": okp("v", x=""),
    "x padded": okp("w", x=b64(b"\x01" * 32) + "="),
    "x standard base64": okp("y", x=base64.b64encode(b"\xfb" * 32).decode()),
    "x not a string": okp("z", x=12),
    "x missing": {"kty": "OKP", "crv": "Ed25519", "kid": "q"},
    "kid missing": {"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x01" * 32)},
    "kid empty": okp(""),
    "kid not a string": okp("k", kid=7),
    "entry not an object": ["OKP", "Ed25519"],
    "entry a string": "OKP",
    "entry null": None,
}


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_unusable_entry_ignored_with_a_warning(name: str, caplog: pytest.LogCaptureFixture) -> None:
    good = okp("good")
    with caplog.at_level(logging.WARNING):
        keys = KeySet.from_document({"keys": [good, UNUSABLE[name]]}, source="passes.jwks.json")
    assert keys.kids() == ["good"]
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "passes.jwks.json" in warnings[0].getMessage()
    assert "1" in warnings[0].getMessage()  # which entry


def test_every_unusable_entry_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    entries = [okp("good"), *UNUSABLE.values(), okp("good2")]
    with caplog.at_level(logging.WARNING):
        keys = KeySet.from_document({"keys": entries}, source="s")
    assert keys.kids() == ["good", "good2"]
    assert len(_warnings(caplog)) == len(UNUSABLE)


def test_a_set_of_only_unusable_entries_is_empty_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        keys = KeySet.from_document({"keys": list(UNUSABLE.values())}, source="s")
    assert len(keys) == 0


def test_unusable_file_entries_ignored_on_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [UNUSABLE["rsa"], okp("k1")]}))
    with caplog.at_level(logging.WARNING):
        keys = KeySet.load(path)
    assert keys.kids() == ["k1"]
    assert str(path) in _warnings(caplog)[0].getMessage()


# -- malformed documents and files ----------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [[], {}, {"keys": {}}, {"keys": "x"}, {"keys": None}, {"Keys": []}, None, "keys", 1],
    ids=["list", "empty", "keys-object", "keys-string", "keys-null", "Keys", "null", "str", "int"],
)
def test_malformed_document_raises_naming_the_source(doc: Any) -> None:
    with pytest.raises(KioskError, match="the-source.json"):
        KeySet.from_document(doc, source="the-source.json")


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b'{"keys": [', b"[]", b'{"keys": 1}', b"\xff\xfe{}", b"null"],
    ids=["empty", "text", "truncated", "list", "keys-int", "not-utf8", "null"],
)
def test_malformed_file_raises_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "pass-keys.json"
    path.write_bytes(content)
    with pytest.raises(KioskError) as info:
        KeySet.load(path)
    assert str(path) in str(info.value)


def test_missing_file_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "keys.json"
    with pytest.raises(KioskError) as info:
        KeySet.load(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(KioskError) as info:
        KeySet.load(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [okp("a")]}))
    path.chmod(0)
    with pytest.raises(KioskError) as info:
        KeySet.load(path)
    assert str(path) in str(info.value)


# -- the last good copy ---------------------------------------------------------------------


def test_save_last_good_round_trips(tmp_path: Path) -> None:
    doc = {"keys": [okp("a"), okp("b")]}
    target = tmp_path / "state" / "keys" / "last-good.json"  # parents created
    save_last_good(doc, target)
    assert json.loads(target.read_text()) == doc
    assert KeySet.load(target).kids() == ["a", "b"]
    assert [p.name for p in target.parent.iterdir()] == ["last-good.json"]  # no temp left


def test_save_last_good_replaces_the_old_copy(tmp_path: Path) -> None:
    target = tmp_path / "last-good.json"
    save_last_good({"keys": [okp("old")]}, target)
    save_last_good({"keys": [okp("new")]}, target)
    assert KeySet.load(target).kids() == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["last-good.json"]


def test_save_last_good_renames_a_complete_file_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Atomic: the target holds the old copy until a complete new file, written in the same
    # directory (same filesystem), replaces it in one rename.
    target = tmp_path / "last-good.json"
    save_last_good({"keys": [okp("old")]}, target)
    new = {"keys": [okp("new")]}
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        assert Path(src).parent == target.parent
        assert json.loads(Path(src).read_text()) == new  # complete before the rename
        assert KeySet.load(target).kids() == ["old"]  # the old copy intact until then
        seen.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(jwks_module.os, "replace", spy)
    save_last_good(new, target)
    assert len(seen) == 1 and seen[0][1] == str(target)
    assert KeySet.load(target).kids() == ["new"]


def test_failed_save_keeps_the_old_copy_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last-good.json"
    save_last_good({"keys": [okp("old")]}, target)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jwks_module.os, "fsync", disk_full)
    with pytest.raises(OSError):
        save_last_good({"keys": [okp("new")]}, target)
    assert KeySet.load(target).kids() == ["old"]
    # BUG: kiosk/jwks.py save_last_good does not remove its mkstemp file when writing fails
    # (disk full, fsync error), so every failed refresh leaves a `.keys-*` file behind in
    # the state directory. Fix: wrap the write in try/except BaseException: os.unlink(tmp);
    # raise.
    assert [p.name for p in tmp_path.iterdir()] == ["last-good.json"]
