"""From the text of a presented code to a credential or a named refusal (credentials.md).

The checks run in the page's order (size, shape, header, alg, kid, signature, claims, time,
replay) and the first failure names the reason. Nothing here raises on input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from kiosk.iin import is_twelve_digits, is_valid_iin
from kiosk.jwks import KeySet
from kiosk.jws import Malformed, b64url_decode, is_compact_shape, is_int, json_object
from kiosk.reasons import Reason, Status

MAX_CODE_BYTES = 2048
PASS_TYP = "ashyq-pass+jwt"
MAX_PASS_LIFETIME_S = 600
_STRIP = " \t\r\n"
_JTI = re.compile(r"[A-Za-z0-9_-]{8,64}")
_PASSPORT = re.compile(r"passport:[A-Z]{3}:[A-Z0-9]{1,20}")
_STATUSES = frozenset(s.value for s in Status)


@dataclass(frozen=True, slots=True)
class BareIin:
    """A bare IIN: a subject with no status of its own."""

    subject: str


@dataclass(frozen=True, slots=True)
class SignedPass:
    """A verified signed pass; its claims are trusted, its time and replay checked."""

    subject: str
    st: str
    iat: int
    exp: int
    jti: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A code refused with one reason; ``subject`` only when a trusted signature named it."""

    reason: Reason
    subject: str | None = None


Credential = BareIin | SignedPass | Refusal


def subject_reason(sub: object) -> Reason | None:
    """None when ``sub`` is a well-formed subject, else the reason it is not."""
    if not isinstance(sub, str):
        return Reason.INVALID_PAYLOAD
    if sub.startswith("iin:"):
        digits = sub[4:]
        if not is_twelve_digits(digits):
            return Reason.INVALID_PAYLOAD
        return None if is_valid_iin(digits) else Reason.INVALID_IIN
    return None if _PASSPORT.fullmatch(sub) else Reason.INVALID_PAYLOAD


class CredentialParser:
    """Turns presented bytes into a credential, against trusted pass keys and issuers.

    ``pass_keys`` is called for the current key set, so a refreshed set takes effect at once.
    ``is_replayed`` answers whether a jti has already been used at this kiosk.
    """

    def __init__(
        self,
        *,
        pass_keys: Callable[[], KeySet],
        trusted_issuers: Collection[str],
        leeway_s: float = 30.0,
        is_replayed: Callable[[str], bool] = lambda jti: False,
    ) -> None:
        self._keys = pass_keys
        self._issuers = frozenset(trusted_issuers)
        self._leeway = leeway_s
        self._is_replayed = is_replayed

    def parse(self, data: bytes | str, now: float) -> Credential:
        """Evaluate one presented code at wall time ``now``."""
        if isinstance(data, str):
            try:
                data = data.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates cannot have come from a reader
                return Refusal(Reason.INVALID_PAYLOAD)
        if len(data) > MAX_CODE_BYTES:
            return Refusal(Reason.INVALID_PAYLOAD)
        try:
            text = data.decode("utf-8").strip(_STRIP)
        except UnicodeDecodeError:
            return Refusal(Reason.INVALID_PAYLOAD)
        if is_twelve_digits(text):
            return BareIin("iin:" + text) if is_valid_iin(text) else Refusal(Reason.INVALID_IIN)
        if not is_compact_shape(text):
            return Refusal(Reason.INVALID_PAYLOAD)
        return self._parse_pass(text, now)

    def _parse_pass(self, text: str, now: float) -> Credential:
        head_b64, claims_b64, sig_b64 = text.split(".")
        try:
            header = json_object(b64url_decode(head_b64))
        except Malformed:
            return Refusal(Reason.INVALID_PAYLOAD)
        if "typ" in header and header["typ"] != PASS_TYP:
            return Refusal(Reason.INVALID_PAYLOAD)
        if header.get("alg") != "EdDSA":
            return Refusal(Reason.BAD_SIGNATURE)
        key = self._keys().get(header.get("kid"))
        if key is None:
            return Refusal(Reason.UNTRUSTED_KEY)
        try:
            key.verify(b64url_decode(sig_b64), f"{head_b64}.{claims_b64}".encode("ascii"))
        except (Malformed, InvalidSignature):
            return Refusal(Reason.BAD_SIGNATURE)
        try:
            claims = json_object(b64url_decode(claims_b64))
        except Malformed:
            return Refusal(Reason.INVALID_PAYLOAD)
        return self._check_claims(claims, now)

    def _check_claims(self, claims: dict[str, object], now: float) -> Credential:
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            return Refusal(Reason.UNTRUSTED_KEY)
        sub = claims.get("sub")
        bad_sub = subject_reason(sub)
        if bad_sub is not None:
            return Refusal(bad_sub)
        assert isinstance(sub, str)
        st, iat, exp, nbf, jti = (claims.get(k) for k in ("st", "iat", "exp", "nbf", "jti"))
        if (
            not isinstance(st, str)
            or st not in _STATUSES
            or not is_int(iat)
            or not is_int(exp)
            or not (0 < exp - iat <= MAX_PASS_LIFETIME_S)
            or ("nbf" in claims and not is_int(nbf))
            or not isinstance(jti, str)
            or not _JTI.fullmatch(jti)
        ):
            return Refusal(Reason.INVALID_PAYLOAD, sub)
        assert isinstance(st, str) and isinstance(iat, int) and isinstance(exp, int)
        leeway = self._leeway
        if now + leeway < iat or (isinstance(nbf, int) and now + leeway < nbf):
            return Refusal(Reason.NOT_YET_VALID, sub)
        if now - leeway >= exp:
            return Refusal(Reason.EXPIRED, sub)
        if self._is_replayed(jti):
            return Refusal(Reason.REPLAYED, sub)
        return SignedPass(subject=sub, st=st, iat=iat, exp=exp, jti=jti)

    @property
    def leeway_s(self) -> float:
        """The clock leeway L of the time rules."""
        return self._leeway
