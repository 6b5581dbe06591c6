"""Keyed pseudonyms and masked display forms: the only ways a person appears anywhere."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    """HMAC-SHA256 of the subject under the venue secret, cut to 20 hex characters (mqtt.md).

    The same person gets the same pseudonym at one venue, so anti-passback and caches work,
    but the pseudonym cannot be turned back into an IIN without the venue secret.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the venue secret must be at least 16 bytes")
        self._secret = secret

    def __call__(self, subject: str) -> str:
        return hmac.new(self._secret, subject.encode(), hashlib.sha256).hexdigest()[:20]


def mask(subject: str) -> str:
    """A display form that shows only the first two and last two characters of the number.

    ``iin:921029350851`` becomes ``92********51``; ``passport:DEU:C01X00T47`` becomes
    ``DEU C0*****47``.
    """
    kind, _, rest = subject.partition(":")
    country = ""
    if kind == "passport":
        country, _, rest = rest.partition(":")
        country += " "
    if len(rest) <= 4:
        return country + "*" * len(rest)
    return country + rest[:2] + "*" * (len(rest) - 4) + rest[-2:]
