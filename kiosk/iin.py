"""Kazakhstan IIN rules (credentials.md section 1)."""

from __future__ import annotations

_W1 = range(1, 12)
_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def is_twelve_digits(text: str) -> bool:
    """True for exactly 12 ASCII digits (str.isdigit would also accept other scripts' digits)."""
    return len(text) == 12 and text.isascii() and text.isdigit()


def check_digit(first11: str) -> int | None:
    """The check digit for the first eleven digits, or None when no valid IIN has this prefix."""
    d = [ord(c) - 48 for c in first11]
    r = sum(w * x for w, x in zip(_W1, d, strict=True)) % 11
    if r == 10:
        r = sum(w * x for w, x in zip(_W2, d, strict=True)) % 11
    return None if r == 10 else r


def is_valid_iin(text: str) -> bool:
    """True for 12 ASCII digits with a plausible birth date, century digit and check digit."""
    if not is_twelve_digits(text):
        return False
    month, day, century = int(text[2:4]), int(text[4:6]), int(text[6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and century <= 6):
        return False
    return check_digit(text[:11]) == int(text[11])
