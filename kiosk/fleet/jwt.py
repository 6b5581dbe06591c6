"""Verifying a compact JWS against a key set, with credentials.md's rules and reason names.

Passes keep their own verifier (kiosk/credentials.py); operator commands (mqtt.md) reuse the
same rules through this helper: header, ``alg``, ``kid``, signature, then the claims object,
and the time rule with a leeway.
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.exceptions import InvalidSignature

from kiosk.jwks import KeySet
from kiosk.jws import Malformed, b64url_decode, is_compact_shape, is_int, json_object
from kiosk.reasons import Reason

#: credentials.md: a jti is 8-64 characters of ``A-Z a-z 0-9 _ -``.
JTI = re.compile(r"[A-Za-z0-9_-]{8,64}")


class Refused(Exception):
    """A token refused with one reason (a credentials.md reason or a command's own)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)


def verify_compact(
    text: str, keys: KeySet, *, refused_typ: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The claims of a compact JWS whose EdDSA signature verifies under ``keys``.

    Checks, in credentials.md's order: shape, header, ``typ`` (one of ``refused_typ`` is
    ``invalid_payload``, so that a token made for another purpose is not accepted here),
    ``alg``, ``kid``, signature, claims object. Raises :class:`Refused` with the first failure.
    """
    if not is_compact_shape(text):
        raise Refused(Reason.INVALID_PAYLOAD)
    head_b64, claims_b64, sig_b64 = text.split(".")
    try:
        header = json_object(b64url_decode(head_b64))
    except Malformed:
        raise Refused(Reason.INVALID_PAYLOAD) from None
    if header.get("typ") in refused_typ:
        raise Refused(Reason.INVALID_PAYLOAD)
    if header.get("alg") != "EdDSA":
        raise Refused(Reason.BAD_SIGNATURE)
    key = keys.get(header.get("kid"))
    if key is None:
        raise Refused(Reason.UNTRUSTED_KEY)
    try:
        key.verify(b64url_decode(sig_b64), f"{head_b64}.{claims_b64}".encode("ascii"))
    except (Malformed, InvalidSignature):
        raise Refused(Reason.BAD_SIGNATURE) from None
    try:
        return json_object(b64url_decode(claims_b64))
    except Malformed:
        raise Refused(Reason.INVALID_PAYLOAD) from None


def check_lifetime(claims: dict[str, Any], *, max_lifetime_s: int) -> tuple[int, int, str]:
    """(iat, exp, jti) if they are well formed: integers, ``0 < exp - iat <= max_lifetime_s``,
    an integer ``nbf`` if present, a jti of the page's form; else ``invalid_payload``."""
    iat, exp, nbf, jti = (claims.get(k) for k in ("iat", "exp", "nbf", "jti"))
    if (
        not is_int(iat)
        or not is_int(exp)
        or not (0 < exp - iat <= max_lifetime_s)
        or ("nbf" in claims and not is_int(nbf))
        or not isinstance(jti, str)
        or not JTI.fullmatch(jti)
    ):
        raise Refused(Reason.INVALID_PAYLOAD)
    return iat, exp, jti


def check_time(claims: dict[str, Any], now: float, leeway_s: float) -> None:
    """credentials.md's time rule: ``not_yet_valid`` before ``iat``/``nbf`` minus the leeway,
    ``expired`` from ``exp`` plus the leeway. Call after :func:`check_lifetime`."""
    iat, exp, nbf = claims["iat"], claims["exp"], claims.get("nbf")
    if now + leeway_s < iat or (is_int(nbf) and now + leeway_s < nbf):
        raise Refused(Reason.NOT_YET_VALID)
    if now - leeway_s >= exp:
        raise Refused(Reason.EXPIRED)
