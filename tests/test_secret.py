"""A Secret never prints its value; only reveal() gives it."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest

from kiosk.secret import MASK, Secret, reveal

VALUE = "s3cr3t-value-0001"


def test_every_way_of_printing_shows_the_mask():
    s = Secret(VALUE)
    shown = [
        repr(s),
        str(s),
        format(s),
        format(s, ">30"),
        f"{s}",
        f"{s!r}",
        f"{s!s}",
        f"{s:^20}",
        "%s %r" % (s, s),  # noqa: UP031 - the old formatting is what logging uses
        "{} {!r}".format(s, s),  # noqa: UP032
        json.dumps({"k": s}, default=str),
        repr([s, (s,), {"k": s}]),
    ]
    assert all(VALUE not in text for text in shown)
    assert repr(s) == str(s) == f"{s}" == MASK


def test_a_log_line_shows_the_mask(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("kiosk.test").info("token %s %r", Secret(VALUE), Secret(VALUE))
    assert VALUE not in caplog.text and MASK in caplog.text


def test_reveal():
    s = Secret(VALUE)
    assert s.reveal() == VALUE and s.reveal_bytes() == VALUE.encode()
    assert reveal(s) == VALUE and reveal(None) is None


def test_only_a_str_is_held():
    with pytest.raises(TypeError):
        Secret(VALUE.encode())  # type: ignore[arg-type]


def test_equality_needs_both_values_and_the_hash_tells_nothing():
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    # A plain string never equals a secret: `secret == guess` cannot probe it.
    assert Secret(VALUE) != VALUE and VALUE != Secret(VALUE)  # noqa: SIM300 - both sides
    assert hash(Secret(VALUE)) == hash(Secret("other")) == hash(Secret(""))
    assert hash(Secret(VALUE)) != hash(VALUE)
    assert len({Secret(VALUE), Secret(VALUE), Secret("other")}) == 2


def test_empty_is_false_as_the_empty_string_was():
    assert not Secret("") and Secret(VALUE)


def test_immutable_and_without_a_dict():
    s = Secret(VALUE)
    with pytest.raises(AttributeError):
        s._value = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.other = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        vars(s)
    assert s.reveal() == VALUE


def test_copies_are_the_same_object_and_pickling_is_refused():
    s = Secret(VALUE)
    assert copy.copy(s) is s and copy.deepcopy(s) is s
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="not pickled"):
            pickle.dumps(s, protocol=protocol)
