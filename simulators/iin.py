"""Kazakhstan IINs for the simulated world, written from credentials.md section 1.

This is an independent implementation on purpose: the simulators check the kiosk, so they
must not share its parsing code (a shared bug would pass unnoticed).
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

_IIN_RE = re.compile(r"[0-9]{12}")
_WEIGHTS_FIRST = tuple(range(1, 12))
# The second pass restarts the weights at 3 and wraps after 11 (credentials.md step 2).
_WEIGHTS_SECOND = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)

# Century-and-sex digit (digit 7): odd is male, even is female.
_CENTURY_DIGITS = {18: (1, 2), 19: (3, 4), 20: (5, 6)}

# Birth dates of the simulated population: old enough to be a pensioner, young enough to
# be a child with a parent at a cinema.
BORN_FROM = date(1935, 1, 1)
BORN_TO = date(2016, 12, 31)


def iin_check_digit(first11: str) -> int | None:
    """The check digit for the first eleven digits, or None when no valid IIN has them."""
    if len(first11) != 11 or not first11.isascii() or not first11.isdigit():
        raise ValueError("an IIN prefix is exactly 11 ASCII digits")
    digits = [int(c) for c in first11]
    r = sum(w * d for w, d in zip(_WEIGHTS_FIRST, digits, strict=True)) % 11
    if r == 10:
        r = sum(w * d for w, d in zip(_WEIGHTS_SECOND, digits, strict=True)) % 11
        if r == 10:
            return None
    return r


def is_valid_iin(text: str) -> bool:
    """True when ``text`` is a well-formed IIN: date fields, century digit and check digit."""
    if not _IIN_RE.fullmatch(text):
        return False
    month, day, century = int(text[2:4]), int(text[4:6]), int(text[6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and century <= 6):
        return False
    return iin_check_digit(text[:11]) == int(text[11])


def century_digit(year: int, *, female: bool) -> int:
    """Digit 7 of the IIN for someone born in ``year``."""
    male_digit, female_digit = _CENTURY_DIGITS[year // 100]
    return female_digit if female else male_digit


def is_female(iin: str) -> bool | None:
    """The sex an IIN encodes (even century digit), or None for digit 0 (foreign residents)."""
    digit = int(iin[6])
    return None if digit == 0 else digit % 2 == 0


def make_iin(
    rng: random.Random,
    *,
    birth: date | None = None,
    female: bool | None = None,
    foreign_resident: bool = False,
) -> str:
    """A valid IIN drawn from ``rng``; the same generator state gives the same IIN.

    ``foreign_resident`` uses century digit 0, which the spec says is seen for some foreign
    residents; the date and sex then carry no century information.
    """
    if birth is None:
        span = (BORN_TO - BORN_FROM).days
        birth = BORN_FROM + timedelta(days=rng.randrange(span + 1))
    if female is None:
        female = rng.random() < 0.5
    digit7 = 0 if foreign_resident else century_digit(birth.year, female=female)
    prefix = f"{birth:%y%m%d}{digit7}"
    # About 1 prefix in 121 has no valid check digit; draw another serial number then.
    while True:
        first11 = f"{prefix}{rng.randrange(10_000):04d}"
        check = iin_check_digit(first11)
        if check is not None:
            return f"{first11}{check}"
