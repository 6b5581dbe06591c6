"""Keyed pseudonyms (mqtt.md) and masked display forms: the only ways a person appears."""

from __future__ import annotations

import hashlib
import hmac
import random
import re

import pytest

from kiosk.pseudonym import Pseudonymizer, mask
from simulators.iin import make_iin

SECRET = b"test-venue-secret-0123456789"
OTHER_SECRET = b"another-venue-secret-98765"
SUB = "iin:921029350851"


def test_pseudonym_is_20_lowercase_hex_chars() -> None:
    p = Pseudonymizer(SECRET)(SUB)
    assert re.fullmatch(r"[0-9a-f]{20}", p)


def test_pseudonym_is_the_hmac_sha256_of_the_subject_cut_to_20() -> None:
    # mqtt.md: the hex of HMAC-SHA256(venue secret, subject), cut to 20 characters.
    expected = hmac.new(SECRET, SUB.encode(), hashlib.sha256).hexdigest()[:20]
    assert Pseudonymizer(SECRET)(SUB) == expected


def test_pseudonym_stable_per_secret() -> None:
    assert Pseudonymizer(SECRET)(SUB) == Pseudonymizer(SECRET)(SUB)
    pseudo = Pseudonymizer(SECRET)
    assert pseudo(SUB) == pseudo(SUB)


def test_pseudonym_differs_across_secrets() -> None:
    assert Pseudonymizer(SECRET)(SUB) != Pseudonymizer(OTHER_SECRET)(SUB)


def test_pseudonym_differs_across_subjects() -> None:
    pseudo = Pseudonymizer(SECRET)
    rng = random.Random(7)
    subjects = {"iin:" + make_iin(rng) for _ in range(500)}
    subjects |= {"passport:DEU:C01X00T47", "passport:KAZ:C01X00T47"}
    assert len({pseudo(s) for s in subjects}) == len(subjects)


def test_pseudonym_never_contains_the_id() -> None:
    pseudo = Pseudonymizer(SECRET)
    for sub in (SUB, "passport:DEU:C01X00T47"):
        p = pseudo(sub)
        assert sub.split(":")[-1] not in p
        assert sub not in p


@pytest.mark.parametrize("secret", [b"", b"x", b"x" * 15])
def test_short_secret_refused(secret: bytes) -> None:
    with pytest.raises(ValueError):
        Pseudonymizer(secret)


def test_16_byte_secret_accepted() -> None:
    assert len(Pseudonymizer(b"x" * 16)(SUB)) == 20


# -- masked form ----------------------------------------------------------------------------


def test_mask_iin() -> None:
    assert mask("iin:921029350851") == "92********51"


def test_mask_passport() -> None:
    assert mask("passport:DEU:C01X00T47") == "DEU C0*****47"


@pytest.mark.parametrize(
    ("subject", "masked"),
    [
        ("passport:KAZ:N12345678", "KAZ N1*****78"),
        ("passport:GBR:" + "A" * 20, "GBR AA" + "*" * 16 + "AA"),
        ("passport:USA:1", "USA *"),
        ("passport:USA:1234", "USA ****"),
    ],
)
def test_mask_passport_forms(subject: str, masked: str) -> None:
    assert mask(subject) == masked


def test_masked_iin_never_contains_the_middle_digits() -> None:
    rng = random.Random(2024)
    for _ in range(1000):
        iin = make_iin(rng)
        masked = mask("iin:" + iin)
        assert len(masked) == 12
        assert masked[:2] == iin[:2] and masked[-2:] == iin[-2:]
        assert masked[2:10] == "*" * 8
        assert sum(c.isdigit() for c in masked) == 4
        assert iin[2:10] not in masked


def test_masked_forms_never_contain_the_subject() -> None:
    for sub in (SUB, "passport:DEU:C01X00T47", "passport:USA:1234"):
        masked = mask(sub)
        number = sub.rsplit(":", 1)[1]
        assert number not in masked
        assert sub not in masked
