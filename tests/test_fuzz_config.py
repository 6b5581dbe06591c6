"""Property tests: whatever file the loader is given, it answers with a Config or a
ConfigError whose every line names the file; never another exception.

Deterministic (derandomized, no example database) and quick on a busy 2-core machine.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kiosk.config import Config, load_config
from kiosk.config.commissioning import findings
from kiosk.config.schema import SECTIONS, TABLES
from kiosk.config.show import shown
from kiosk.errors import ConfigError
from support import REPO

FAST = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=400,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
PROFILES = sorted((REPO / "config").glob("*.toml"))


def toml_value(v: Any) -> str:
    """TOML text of one value (inline tables for dicts)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    raise TypeError(type(v))


def toml_doc(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, table in doc.items():
        if not isinstance(table, dict):
            lines.insert(0, f"{json.dumps(name)} = {toml_value(table)}")
            continue
        lines.append(f"[{json.dumps(name)}]")
        for key, value in table.items():
            if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
                continue  # arrays of tables follow the section's plain keys
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
        for key, value in table.items():
            if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
                for item in value:
                    lines.append(f"[[{json.dumps(name)}.{json.dumps(key)}]]")
                    lines += [f"{json.dumps(k)} = {toml_value(x)}" for k, x in item.items()]
    return "\n".join(lines) + "\n"


def profile(path: Path, state: Path) -> dict[str, Any]:
    """A sample profile with its relative paths made absolute (it is written elsewhere)."""
    doc = tomllib.loads(path.read_text())
    for name, keys in SECTIONS.items():
        for key, spec in keys.items():
            value = doc.get(name, {}).get(key)
            if spec.path and isinstance(value, str):
                doc[name][key] = str((path.parent / value).resolve())
    doc["kiosk"]["state_dir"] = str(state)
    return doc


scalars = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "../../etc/passwd", "25:99", "24:00", "Asia/Almaty", "mon"]),
    st.sampled_from(["green", "http://10.0.0.1", "mqtt://[::1", "sim:", "/dev/null", "~root"]),
    st.datetimes(),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
KEYS = [(s, k) for s, keys in SECTIONS.items() for k in keys] + [("policy", t) for t in TABLES]
TABLE_KEYS = [(t, k) for t, keys in TABLES.items() for k in keys]


def check(path: Path) -> Config | None:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert exc.problems
        assert all(p.startswith(f"{path}: ") for p in exc.problems), exc.problems
        return None
    assert isinstance(cfg, Config)
    repr(cfg)
    json.dumps(shown(cfg), default=str)  # what --show prints
    findings(cfg)  # what config check and the doctor warn about
    return cfg


@pytest.fixture
def where(tmp_path: Path) -> Path:
    return tmp_path / "kiosk.toml"


@FAST
@given(
    st.sampled_from(PROFILES),
    st.lists(
        st.tuples(st.sampled_from(KEYS), st.one_of(values, st.none())), min_size=1, max_size=4
    ),
)
@example(REPO / "config" / "gym.toml", [(("policy", "timezone"), 5)])
@example(REPO / "config" / "gym.toml", [(("passes", "keys_file"), "keys\x00.json")])
@example(REPO / "config" / "sim.toml", [(("gate", "unlock_s"), math.nan)])
@example(REPO / "config" / "sim.toml", [(("kiosk", "venue_secret_file"), "/")])
def test_mutated_sample_profiles(where, sample, changes):
    doc = profile(sample, where.parent / "state")
    for (section, key), value in changes:
        table = doc.setdefault(section, {})
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    where.write_text(toml_doc(doc))
    check(where)


@FAST
@given(
    st.sampled_from(PROFILES),
    st.sampled_from(TABLE_KEYS),
    values,
    st.integers(min_value=1, max_value=3),
)
def test_random_values_in_policy_tables(where, sample, table_key, value, n):
    table, key = table_key
    doc = profile(sample, where.parent / "state")
    item: dict[str, Any] = {"allowed": ["green"]} if table == "rule" else {}
    item[key] = value
    doc.setdefault("policy", {})[table] = [item] * n
    where.write_text(toml_doc(doc))
    check(where)


@FAST
@given(st.binary(max_size=400))
@example(b"\xff\xfe[kiosk]")
@example(b"a = " + b"[" * 2000 + b"]" * 2000)
@example(b"a = " + b"{b = " * 2000 + b"1" + b"}" * 2000)
@example(b"[gate]\nunlock_s = " + b"9" * 5000)
@example(b"")
def test_random_bytes(where, data):
    where.write_bytes(data)
    check(where)


@FAST
@given(st.sampled_from(PROFILES), st.data())
def test_bytes_flipped_in_sample_profiles(where, sample, data):
    text = bytearray(toml_doc(profile(sample, where.parent / "state")).encode())
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        i = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        text[i] = data.draw(st.integers(min_value=0, max_value=255))
    where.write_bytes(bytes(text))
    check(where)


def test_unmutated_profiles_survive_the_round_trip(where):
    """The serializer above is faithful: every sample except the template loads as is."""
    for sample in PROFILES:
        where.write_text(toml_doc(profile(sample, where.parent / "state")))
        cfg = check(where)
        assert (cfg is None) == (sample.name == "production.toml"), sample
