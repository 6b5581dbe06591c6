"""Every number of the schema has limits, and every odd value at every key is a clean error.

The keys are walked from the schema itself (SECTIONS and TABLES), so a key added later is
covered without touching this file.
"""

from __future__ import annotations

import math

import pytest

from kiosk.config import load_config
from kiosk.config.load import Section
from kiosk.config.schema import SECTIONS, TABLES, Key
from kiosk.errors import ConfigError
from kiosk.secret import Secret
from support import write_config

NUMERIC = [
    (section, key, spec)
    for section, keys in SECTIONS.items()
    for key, spec in keys.items()
    if spec.kind in (int, float)
]
# (TOML text, the Python value TOML gives)
NUMBERS = [
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("-1", -1),
    ("-0.5", -0.5),
    ("0", 0),
    ("0.5", 0.5),
    ("1", 1),
    ("10_000_000_000_000_000_000_000_000_000_000", 10**34),
    ("1e300", 1e300),
    ("9" * 4000, int("9" * 4000)),
]
WRONG = ['"5"', "true", "false", "[1]", "{ a = 1 }", "1979-05-27", "07:32:00", '""']
MARKER = "@@value@@"


def write(tmp_path, section: str, key: str, text: str):
    path = write_config(tmp_path, None, **{section: {key: MARKER}})
    path.write_text(path.read_text().replace(f'"{MARKER}"', text))
    return path


def in_range(spec: Key, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec.kind is int and not isinstance(value, int):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if spec.choices is not None and value not in spec.choices:
        return False
    return spec.min <= value <= spec.max


def test_every_numeric_key_has_a_minimum_and_a_maximum():
    missing = [f"[{s}] {k}" for s, k, spec in NUMERIC if spec.min is None or spec.max is None]
    assert missing == []
    assert all(spec.min <= spec.max for _, _, spec in NUMERIC)
    tables = [(t, k) for t, keys in TABLES.items() for k, s in keys.items() if s.kind is not str]
    tables = [(t, k) for t, k in tables if TABLES[t][k].kind in (int, float)]
    assert tables == []  # none today; the walk below would need them if one came


@pytest.mark.parametrize(("section", "key", "spec"), NUMERIC, ids=lambda v: str(v)[:20])
def test_odd_numbers_at_every_numeric_key(tmp_path, section, key, spec):
    for text, value in NUMBERS:
        path = write(tmp_path, section, key, text)
        if in_range(spec, value):
            cfg = load_config(path)
            assert cfg.section(section).as_dict()[key] == value, text
            assert type(cfg.section(section).as_dict()[key]) is spec.kind
            continue
        with pytest.raises(ConfigError) as exc:
            load_config(path)
        found = exc.value.problems
        assert found, text
        assert all(p.startswith(f"{path}: [{section}] {key}") for p in found), (text, found)
        assert all(len(p) < 300 for p in found)  # a 4000-digit number is not echoed whole


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "+nan"])
def test_nan_and_infinity_are_refused(tmp_path, text):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "gate", "unlock_s", text))
    assert exc.value.problems == [
        f"{tmp_path / 'kiosk.toml'}: [gate] unlock_s: {text.lstrip('+').replace('-', '-')}"
        " is not a finite number"
    ]


def test_true_is_not_an_integer(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "policy", "capacity", "true"))
    assert "[policy] capacity: expected an integer, got True" in exc.value.problems[0]


@pytest.mark.parametrize(
    ("section", "key", "spec"),
    [(s, k, spec) for s, keys in SECTIONS.items() for k, spec in keys.items()],
    ids=lambda v: str(v)[:20],
)
def test_wrong_types_at_every_key(tmp_path, section, key, spec):
    """A value of the wrong type anywhere: a clean error naming the key, never a crash."""
    for text in WRONG:
        path = write(tmp_path, section, key, text)
        try:
            load_config(path)
        except ConfigError as exc:
            assert any(f"[{section}] {key}" in p for p in exc.problems), (text, exc.problems)
            continue
        # Accepted: only a value of the key's own type ("" for a string, a list, a bool).
        value = load_config(path).section(section).as_dict()[key]
        if isinstance(value, Secret):
            value = value.reveal()
        assert isinstance(value, spec.kind) or value is None, (text, value)


@pytest.mark.parametrize(
    ("table", "key"), [(t, k) for t, keys in TABLES.items() for k in keys], ids=str
)
def test_wrong_types_in_policy_tables(tmp_path, table, key):
    values = {"allowed": '["green"]'} if table == "rule" else {}
    for text in [*WRONG, "5", '["mon", 5]', '"25:99"', '"7:00"', '"١٢:٠٠"', '"24:01"']:
        fields = {**values, key: text}
        body = "\n".join(f"{k} = {v}" for k, v in fields.items())
        path = write_config(tmp_path, None, extra_toml=f"[[policy.{table}]]\n{body}\n")
        try:
            load_config(path)
        except ConfigError as exc:
            assert any(f"[[policy.{table}]] #1 {key}" in p for p in exc.problems), (
                text,
                exc.problems,
            )
            continue
        pytest.fail(f"[[policy.{table}]] {key} = {text} was accepted")


def test_times_of_day(tmp_path):
    extra = '[[policy.hours]]\nopen = "25:99"\nclose = "7:00"\n[[policy.rule]]\ndays = []\n'
    extra += 'allowed = ["green"]\n'
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(tmp_path, None, extra_toml=extra))
    found = "\n".join(exc.value.problems)
    assert "[[policy.hours]] #1 open: '25:99' is not a time of day HH:MM" in found
    assert "[[policy.hours]] #1 close: '7:00' is not a time of day HH:MM" in found
    assert "[[policy.rule]] #1 days: is empty" in found


def test_section_repr_masks_secrets(tmp_path):
    (tmp_path / "pw").write_text("file-password-0001\n")
    path = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        status={"token": "inline-token-0001"},
        mqtt={"password": "inline-password-0001"},
    )
    cfg = load_config(path)
    text = repr(cfg) + str(cfg.masked()) + repr(cfg.status) + str(cfg.mqtt)
    for secret in ("inline-token-0001", "inline-password-0001", "test-venue-secret"):
        assert secret not in text
    assert "token=***" in repr(cfg.status)
    assert isinstance(cfg.status, Section) and cfg.status.token is not None
    assert cfg.status.token.reveal() == "inline-token-0001"
