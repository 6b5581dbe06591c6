"""The simulated authority's pass issuer: signed status passes exactly as credentials.md says.

Written from the spec, not from the kiosk's verifier, so that the two check each other.
Tests build bad passes with ``extra_header``/``extra_claims`` (``OMIT`` deletes a field)
and ``sign_with`` (sign with a key the kiosk does not trust).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import segno
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.errors import KioskError

KEYS_DIR = Path(__file__).resolve().parent / "keys"
SIM_PASS_KEY = KEYS_DIR / "sim-pass-key.pem"
SIM_PASS_JWKS = KEYS_DIR / "passes.jwks.json"
SIM_PASS_KID = "sim1"
SIM_ISSUER = "ashyq-sim"
SIM_OPERATOR_KEY = KEYS_DIR / "sim-operator-key.pem"
SIM_OPERATOR_JWKS = KEYS_DIR / "operators.jwks.json"
SIM_OPERATOR_KID = "op1"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()
"""Value for ``extra_header``/``extra_claims`` that removes the field instead of setting it."""


class IssuerError(KioskError):
    """A signing key cannot be loaded."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(obj: Mapping[str, Any]) -> str:
    # Compact separators: every byte makes the QR code denser (credentials.md).
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def sign_compact(
    header: Mapping[str, Any], claims: Mapping[str, Any], private_key: Ed25519PrivateKey
) -> str:
    """JWS Compact Serialization of ``claims`` under ``header``, signed with Ed25519."""
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The JWK (RFC 8037 OKP) of an Ed25519 public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64url(raw)}


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from an unencrypted PEM file; errors name the file."""
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise IssuerError(f"{path}: cannot load private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IssuerError(f"{path}: not an Ed25519 private key")
    return key


def write_key_pair(pem_path: str | Path, jwks_path: str | Path, *, kid: str) -> Ed25519PrivateKey:
    """Generate a fresh key, write it as PEM and its public half as a one-key JWK Set."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    Path(pem_path).write_bytes(pem)
    jwks = {"keys": [public_jwk(key.public_key(), kid)]}
    Path(jwks_path).write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    return key


class PassIssuer:
    """Mints signed status passes (credentials.md section 2) for one key id and issuer."""

    def __init__(self, private_key: Ed25519PrivateKey, *, kid: str, iss: str) -> None:
        self.private_key = private_key
        self.kid = kid
        self.iss = iss

    @classmethod
    def load(
        cls, path: str | Path = SIM_PASS_KEY, *, kid: str = SIM_PASS_KID, iss: str = SIM_ISSUER
    ) -> PassIssuer:
        """An issuer whose key is read from a PEM file (default: the shipped TEST key)."""
        return cls(load_private_key(path), kid=kid, iss=iss)

    def mint(
        self,
        sub: str,
        st: str,
        *,
        iat: int | None = None,
        exp: int | None = None,
        valid_s: int = 300,
        nbf: int | None = None,
        jti: str | None = None,
        extra_header: Mapping[str, Any] | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        sign_with: Ed25519PrivateKey | None = None,
    ) -> str:
        """A pass for ``sub`` with status ``st``, valid from ``iat`` (default now) for ``valid_s``.

        ``sub`` and ``st`` are not checked, so tests can mint passes the kiosk must refuse.
        """
        if iat is None:
            iat = int(time.time())
        if exp is None:
            exp = iat + valid_s
        if jti is None:
            jti = secrets.token_urlsafe(9)  # 9 random bytes: exactly 12 base64url characters
        header: dict[str, Any] = {"alg": "EdDSA", "kid": self.kid}
        claims: dict[str, Any] = {"iss": self.iss, "sub": sub, "st": st, "iat": iat, "exp": exp}
        if nbf is not None:
            claims["nbf"] = nbf
        claims["jti"] = jti
        _apply(header, extra_header)
        _apply(claims, extra_claims)
        return sign_compact(header, claims, sign_with or self.private_key)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWK Set that verifies this issuer's passes."""
        return {"keys": [public_jwk(self.private_key.public_key(), self.kid)]}


def _apply(target: dict[str, Any], overrides: Mapping[str, Any] | None) -> None:
    for name, value in (overrides or {}).items():
        if value is OMIT:
            target.pop(name, None)
        else:
            target[name] = value


def _make_qr(text: str) -> segno.QRCode:
    # Always a full QR code: segno would pick a Micro QR for short text such as a bare IIN,
    # which phone-screen scanners and many decoders do not read.
    return segno.make_qr(text, error="m")


def qr_png(text: str, path: str | Path, *, scale: int = 8, border: int = 4) -> Path:
    """Draw ``text`` (a pass or a bare IIN) as a QR code PNG; returns the path."""
    path = Path(path)
    _make_qr(text).save(str(path), kind="png", scale=scale, border=border)
    return path


def qr_matrix(text: str, *, border: int = 4) -> list[list[int]]:
    """The QR code of ``text`` as rows of modules (1 dark, 0 light), quiet zone included."""
    return [
        [1 if module else 0 for module in row]
        for row in _make_qr(text).matrix_iter(scale=1, border=border)
    ]
