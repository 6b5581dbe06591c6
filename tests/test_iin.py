"""The IIN rules of credentials.md section 1: date fields, century digit, two-pass check digit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.iin import check_digit, is_twelve_digits, is_valid_iin

# Independent of kiosk.iin on purpose, written from the page: a shared bug would pass unnoticed.
_FIRST = tuple(range(1, 12))
_SECOND = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def _sums(first11: str) -> tuple[int, int]:
    d = [int(c) for c in first11]
    return (
        sum(w * x for w, x in zip(_FIRST, d, strict=True)) % 11,
        sum(w * x for w, x in zip(_SECOND, d, strict=True)) % 11,
    )


def _reference_check(first11: str) -> int | None:
    r1, r2 = _sums(first11)
    if r1 != 10:
        return r1
    return None if r2 == 10 else r2


def _complete(prefix: str) -> str:
    """The first valid-checksum IIN that starts with ``prefix`` (serial digits searched)."""
    for serial in range(10 ** (11 - len(prefix))):
        first11 = prefix + f"{serial:0{11 - len(prefix)}d}"
        check = _reference_check(first11)
        if check is not None:
            return first11 + str(check)
    raise AssertionError(f"no IIN with prefix {prefix}")


def _prefix_where(pred, date_and_century: str = "9210293") -> str:
    """The first 11-digit prefix (date and century fixed) whose two sums satisfy ``pred``."""
    for serial in range(10_000):
        first11 = f"{date_and_century}{serial:04d}"
        if pred(*_sums(first11)):
            return first11
    raise AssertionError("no such prefix")


# -- the page's examples --------------------------------------------------------------------


@pytest.mark.parametrize("iin", ["921029350851", "061211600012"])
def test_spec_valid_examples(iin: str) -> None:
    assert is_valid_iin(iin)
    assert check_digit(iin[:11]) == int(iin[11])


def test_spec_invalid_example_check_digit() -> None:
    assert not is_valid_iin("921029350852")


def test_second_spec_example_needs_the_second_weights() -> None:
    # 061211600012: the first sum is 10, so the check digit 2 comes from the second weights.
    r1, r2 = _sums("06121160001")
    assert (r1, r2) == (10, 2)
    assert check_digit("06121160001") == 2


@pytest.mark.parametrize("last", [d for d in "0123456789" if d != "1"])
def test_every_other_check_digit_is_refused(last: str) -> None:
    assert not is_valid_iin("92102935085" + last)


# -- date fields and century digit ----------------------------------------------------------


@pytest.mark.parametrize("month", ["01", "06", "12"])
def test_months_01_to_12_accepted(month: str) -> None:
    assert is_valid_iin(_complete(f"92{month}153"))


@pytest.mark.parametrize("month", ["00", "13", "19", "99"])
def test_months_outside_01_12_refused(month: str) -> None:
    iin = _complete(f"92{month}153")
    assert _reference_check(iin[:11]) == int(iin[11])  # only the month is wrong
    assert not is_valid_iin(iin)


@pytest.mark.parametrize("day", ["01", "15", "30", "31"])
def test_days_01_to_31_accepted(day: str) -> None:
    assert is_valid_iin(_complete(f"9210{day}3"))


def test_day_31_in_a_30_day_month_is_accepted_as_the_page_only_bounds_01_31() -> None:
    # The page says "day 01-31" and no calendar check: 31 February passes.
    assert is_valid_iin(_complete("920231" + "3"))


@pytest.mark.parametrize("day", ["00", "32", "99"])
def test_days_outside_01_31_refused(day: str) -> None:
    assert not is_valid_iin(_complete(f"9210{day}3"))


@pytest.mark.parametrize("century", "0123456")
def test_century_digits_0_to_6_accepted(century: str) -> None:
    assert is_valid_iin(_complete(f"921029{century}"))


@pytest.mark.parametrize("century", "789")
def test_century_digits_7_to_9_refused(century: str) -> None:
    iin = _complete(f"921029{century}")
    assert _reference_check(iin[:11]) == int(iin[11])
    assert not is_valid_iin(iin)


# -- the second weights and prefixes with no valid IIN --------------------------------------


def test_found_prefix_first_sum_10_uses_second_weights() -> None:
    first11 = _prefix_where(lambda r1, r2: r1 == 10 and r2 != 10)
    r1, r2 = _sums(first11)
    expected = check_digit(first11)
    assert expected == r2
    assert is_valid_iin(first11 + str(r2))
    # Only that digit: in particular not the "10 mod 10 = 0" a careless port would produce.
    for d in range(10):
        assert is_valid_iin(first11 + str(d)) == (d == r2)


def test_prefix_with_both_sums_10_has_no_valid_iin() -> None:
    first11 = _prefix_where(lambda r1, r2: r1 == 10 and r2 == 10)
    assert check_digit(first11) is None
    for d in range(10):
        assert not is_valid_iin(first11 + str(d)), first11 + str(d)


def test_every_no_valid_prefix_in_a_block_refuses_all_ten_digits() -> None:
    found = 0
    for serial in range(10_000):
        first11 = f"9210293{serial:04d}"
        if _sums(first11) == (10, 10):
            found += 1
            assert check_digit(first11) is None
            assert not any(is_valid_iin(first11 + str(d)) for d in range(10))
    assert found > 0


@settings(max_examples=300, derandomize=True, database=None)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_check_digit_matches_reference(first11: str) -> None:
    assert check_digit(first11) == _reference_check(first11)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_is_valid_iin_matches_the_page(text: str) -> None:
    month, day, century = int(text[2:4]), int(text[4:6]), int(text[6])
    expected = (
        1 <= month <= 12
        and 1 <= day <= 31
        and century <= 6
        and _reference_check(text[:11]) == int(text[11])
    )
    assert is_valid_iin(text) == expected


# -- only 12 ASCII digits -------------------------------------------------------------------

_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_EXT_ARABIC_INDIC = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


@pytest.mark.parametrize("table", [_ARABIC_INDIC, _EXT_ARABIC_INDIC, _FULLWIDTH, _DEVANAGARI])
def test_non_ascii_digits_refused(table: dict[int, int]) -> None:
    text = "921029350851".translate(table)
    assert text.isdigit()  # what str.isdigit would wrongly accept
    assert not is_twelve_digits(text)
    assert not is_valid_iin(text)


def test_a_single_non_ascii_digit_refused() -> None:
    text = "92102935085" + "١"  # Arabic-Indic one in the check-digit place
    assert not is_twelve_digits(text)
    assert not is_valid_iin(text)


def test_superscript_digit_refused() -> None:
    assert not is_valid_iin("92102935085¹")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "92102935085",
        "9210293508510",
        " 921029350851",
        "921029350851 ",
        "921029350851\n",
        "+92102935085",
        "-92102935085",
        "92102935085a",
        "9210 2935085",
    ],
)
def test_not_twelve_ascii_digits(text: str) -> None:
    assert not is_twelve_digits(text)
    assert not is_valid_iin(text)


def test_twelve_ascii_digits_recognised() -> None:
    assert is_twelve_digits("000000000000")
    assert is_twelve_digits("921029350852")  # the shape, not the validity
