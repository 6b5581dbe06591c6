"""The typed section records agree with the schema, and a Config never prints a secret.

The schema (kiosk/config/schema.py) is the one source of keys; the records of
kiosk/config/sections.py are checked against it here key by key, both ways, so a key added
to one and not the other, or given another type, fails this test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import pprint
import types
import typing

import pytest

from kiosk.config import load_config
from kiosk.config.schema import REQUIRED, SECTIONS, Key
from kiosk.config.sections import (
    ATTRIBUTES,
    FILLED_BY_LOADER,
    SECTION_TYPES,
    Config,
    GateSection,
    Section,
    build_section,
)
from kiosk.config.show import shown
from kiosk.secret import MASK, Secret
from support import write_config

SECRETS = ("inline-token-0001", "file-password-0001", "venue-secret-from-a-file-01")


def _shape(hint: object) -> object:
    """A comparable form of a type hint (unions and Literals as sets of their members)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return ("union", frozenset(_shape(a) for a in typing.get_args(hint)))
    if origin is typing.Literal:
        return ("literal", frozenset(typing.get_args(hint)))
    if origin is tuple:
        item, dots = typing.get_args(hint)
        assert dots is Ellipsis
        return ("tuple", _shape(item))
    return hint


def expected_shape(section: str, key: str, spec: Key) -> object:
    """The field type a schema key calls for."""
    if spec.kind is list:
        assert spec.item is not None
        item = ("literal", frozenset(spec.choices)) if spec.choices else spec.item
        base: object = ("tuple", item)
    elif spec.secret:
        base = Secret
    elif spec.choices:
        base = ("literal", frozenset(spec.choices))
    else:
        base = spec.kind
    optional = spec.default is None and (section, key) not in FILLED_BY_LOADER
    return ("union", frozenset({base, type(None)})) if optional else base


def test_every_section_has_its_record_and_its_config_attribute():
    assert list(SECTION_TYPES) == list(SECTIONS)
    hints = typing.get_type_hints(Config)
    for name, cls in SECTION_TYPES.items():
        assert issubclass(cls, Section)
        assert hints[ATTRIBUTES[name]] is cls, name


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_schema_key_is_a_field_of_its_type_and_back(name):
    cls = SECTION_TYPES[name]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) == set(SECTIONS[name]), "the schema and the record name other keys"
    assert list(fields) == list(SECTIONS[name]), "the same order, so --show stays as it was"
    for key, spec in SECTIONS[name].items():
        assert _shape(hints[key]) == expected_shape(name, key, spec), f"[{name}] {key}"
        # Defaults live in the schema only: the record has none to drift.
        assert fields[key].default is dataclasses.MISSING, f"[{name}] {key}"
        assert fields[key].default_factory is dataclasses.MISSING, f"[{name}] {key}"


def test_keys_filled_by_the_loader_are_schema_keys_defaulting_to_none():
    for section, key in FILLED_BY_LOADER:
        assert SECTIONS[section][key].default is None
        assert SECTIONS[section][key].default is not REQUIRED


def test_a_record_and_values_that_disagree_are_refused():
    values = {k: spec.default for k, spec in SECTIONS["gate"].items()}
    assert build_section(GateSection, "gate", values).unlock_s == 5.0
    with pytest.raises(RuntimeError, match="differ"):
        build_section(GateSection, "gate", {**values, "extra_s": 1.0})
    with pytest.raises(RuntimeError, match="differ"):
        build_section(GateSection, "gpio", values)


def test_records_are_frozen_and_lists_are_tuples(tmp_path):
    cfg = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.gate.unlock_s = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.gate = cfg.gate  # type: ignore[misc]
    assert cfg.passes.issuers == ("ashyq-sim",)
    assert cfg.policy_section.allowed == ("green", "blue")
    assert cfg.section("policy") is cfg.policy_section and cfg.section("gate") is cfg.gate
    assert cfg.masked()["passes"]["issuers"] == ["ashyq-sim"]  # TOML's types, for --show
    with pytest.raises(KeyError):
        cfg.section("gaet")


@pytest.fixture
def secret_config(tmp_path):
    (tmp_path / "pw").write_text(SECRETS[1] + "\n")
    (tmp_path / "venue").write_text(SECRETS[2] + "\n")
    path = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        kiosk={"venue_secret": None, "venue_secret_file": "venue"},
        status={"token": SECRETS[0]},
        mqtt={"password_file": "pw"},
    )
    return load_config(path)


def test_the_secrets_are_held_and_revealed(secret_config):
    cfg = secret_config
    assert cfg.venue_secret.reveal() == SECRETS[2]
    assert cfg.token is not None and cfg.token.reveal() == SECRETS[0]
    assert cfg.mqtt_password is not None and cfg.mqtt_password.reveal() == SECRETS[1]
    assert isinstance(cfg.status.token, Secret) and cfg.status.token.reveal() == SECRETS[0]


def test_no_way_of_printing_a_config_shows_a_secret(secret_config):
    cfg = secret_config
    things: list[object] = [cfg, *(cfg.section(name) for name in SECTIONS)]
    texts: list[str] = []
    for thing in things:
        texts += [repr(thing), str(thing), format(thing), f"{thing}", f"{thing!r}"]
        texts.append("%s %r" % (thing, thing))  # noqa: UP031 - logging's formatting
        texts.append(json.dumps(thing, default=str))
        texts.append(pprint.pformat(thing))
    texts.append(json.dumps(dataclasses.asdict(cfg), default=str))
    texts.append(json.dumps(cfg.masked()))
    texts.append(json.dumps(shown(cfg), default=str))
    texts.append(json.dumps({n: cfg.section(n).as_dict() for n in SECTIONS}, default=str))
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text
    assert f"token={MASK}" in repr(cfg) and f"venue_secret={MASK}" in repr(cfg)


def test_copying_a_config_is_fine_and_pickling_refused(secret_config):
    cfg = secret_config
    assert copy.deepcopy(cfg) == cfg and copy.copy(cfg) == cfg
    assert dataclasses.replace(cfg).token is cfg.token
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(cfg)


def test_equality_tells_secrets_apart_and_the_hash_does_not_depend_on_them(secret_config):
    cfg = secret_config
    other = dataclasses.replace(cfg, token=Secret("another-token-0002"))
    assert other != cfg
    assert hash(other) == hash(dataclasses.replace(cfg, token=Secret("a-third-token-03")))
