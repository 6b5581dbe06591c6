"""Configuration at fleet scale: a shared kiosk.toml and per-gate kiosk.d/*.toml files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.config.commissioning import findings
from kiosk.config.merge import config_files, merge_files
from kiosk.errors import ConfigError
from support import write_config

HOURS = """
[[policy.hours]]
days = ["mon", "tue", "wed", "thu", "fri"]
open = "06:00"
close = "23:00"

[[policy.hours]]
days = ["sat", "sun"]
open = "08:00"
close = "20:00"
"""


def drop_in(base: Path, name: str, text: str) -> Path:
    folder = base.parent / "kiosk.d"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return exc.value.problems


def test_no_kiosk_d_is_fine(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    cfg = load_config(base)
    assert cfg.files == (base,)
    assert cfg.sources["[kiosk] venue_id"] == str(base)
    assert cfg.sources["[gate] unlock_s"] == "default"


def test_files_merge_in_name_order_the_later_key_winning(tmp_path: Path) -> None:
    base = write_config(tmp_path, gate={"unlock_s": 4.0, "cooldown_s": 6.0})
    # Written out of order: the names, not the creation order, decide.
    gate = drop_in(base, "20-gate.toml", '[kiosk]\nid = "gate-12"\n[gate]\nunlock_s = 7.0\n')
    site = drop_in(base, "10-site.toml", '[kiosk]\nid = "site"\n[gate]\nunlock_s = 6.0\n')
    cfg = load_config(base)
    assert cfg.files == (base, site, gate)
    assert cfg.kiosk.id == "gate-12"
    assert cfg.gate.unlock_s == 7.0
    # Tables merge key by key: the base's cooldown and venue stay.
    assert cfg.gate.cooldown_s == 6.0 and cfg.kiosk.venue_id == "v1"
    assert cfg.sources["[kiosk] id"] == str(gate)
    assert cfg.sources["[gate] cooldown_s"] == str(base)


def test_arrays_of_tables_are_replaced_whole(tmp_path: Path) -> None:
    base = write_config(tmp_path, extra_toml=HOURS)
    assert len(load_config(base).policy.hours) == 2
    gate = drop_in(base, "20-gate.toml", '[[policy.hours]]\ndays = ["mon"]\nopen = "09:00"\n')
    cfg = load_config(base)
    assert len(cfg.policy.hours) == 1  # not the base's two plus this one
    assert cfg.policy.hours[0].start_min == 9 * 60
    assert cfg.sources["[[policy.hours]]"] == str(gate)
    assert cfg.sources["[[policy.rule]]"] == "default"


def test_a_plain_array_is_replaced_too(tmp_path: Path) -> None:
    base = write_config(tmp_path, policy={"allowed": ["green", "blue"]})
    drop_in(base, "20-gate.toml", '[policy]\nallowed = ["green"]\n')
    assert load_config(base).policy.allowed == frozenset({"green"})


def test_an_unknown_key_names_the_per_gate_file(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    gate = drop_in(base, "20-gate.toml", "[gate]\nunlok_s = 3.0\n[gaet]\nx = 1\n")
    found = problems(base)
    assert f"{gate}: [gate] unlok_s: unknown key; did you mean 'unlock_s'?" in found
    assert f"{gate}: [gaet]: unknown section; did you mean 'gate'?" in found


def test_a_bad_value_names_the_file_that_set_it(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    text = '[gate]\nunlock_s = 0.01\n[[policy.hours]]\nopen = "25:00"\n'
    gate = drop_in(base, "20-gate.toml", text)
    found = problems(base)
    assert any(p.startswith(f"{gate}: [gate] unlock_s: ") for p in found), found
    assert any(p.startswith(f"{gate}: [[policy.hours]] #1 open: ") for p in found), found


def test_a_key_set_nowhere_is_named_in_the_base_file(tmp_path: Path) -> None:
    base = write_config(tmp_path, kiosk={"venue_id": None})
    drop_in(base, "20-gate.toml", '[kiosk]\nid = "gate-12"\n')
    assert f"{base}: [kiosk] venue_id: is required" in problems(base)


def test_a_broken_per_gate_file_names_itself_and_all_are_reported(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    one = drop_in(base, "10-a.toml", "[gate\n")
    two = drop_in(base, "20-b.toml", "x = = 1\n")
    found = problems(base)
    assert len(found) == 2
    assert found[0].startswith(f"{one}: not valid TOML")
    assert found[1].startswith(f"{two}: not valid TOML")


def test_other_names_are_ignored(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    drop_in(base, "20-gate.toml.bak", "not toml at all [")
    drop_in(base, "README", "notes")
    drop_in(base, ".20-gate.toml", "editor's lock [")
    assert config_files(base) == [base]
    assert load_config(base).files == (base,)


def test_an_unreadable_per_gate_file_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    base = write_config(tmp_path)
    gate = drop_in(base, "20-gate.toml", "[gate]\nunlock_s = 3.0\n")
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):
        if self == gate:  # the kernel's answer at the boundary (the tests may run as root)
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert problems(base) == [f"{gate}: cannot read: Permission denied"]


def test_kiosk_d_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    (tmp_path / "kiosk.d").write_text("")
    folder = tmp_path / "kiosk.d"
    assert problems(base) == [f"{folder}: not a folder (per-gate files go in a folder)"]


def test_a_relative_path_is_resolved_beside_its_own_file(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    gate = drop_in(base, "20-gate.toml", '[kiosk]\nstate_dir = "gate-state"\n')
    assert load_config(base).kiosk.state_dir == str(gate.parent / "gate-state")


def test_merging_does_not_change_the_earlier_document(tmp_path: Path) -> None:
    base = write_config(tmp_path)
    drop_in(base, "20-gate.toml", "[gate]\nunlock_s = 3.0\n")
    merged = merge_files(base)
    assert merged.data["gate"] == {"unlock_s": 3.0}
    # A table replaced by a value forgets the sources of its old keys.
    drop_in(base, "30-odd.toml", "gate = 5\n")
    merged = merge_files(base)
    assert ("gate", "unlock_s") not in merged.sources
    assert merged.file_of(("gate",)) == base.parent / "kiosk.d" / "30-odd.toml"
    assert f"{base.parent / 'kiosk.d' / '30-odd.toml'}: [gate]: must be a table" in problems(base)


def test_the_id_defaults_to_the_host_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "gate-12.terminal-b")
    cfg = load_config(write_config(tmp_path, kiosk={"id": None}))
    assert cfg.kiosk.id == "gate-12.terminal-b"
    assert cfg.sources["[kiosk] id"] == "host name"


def test_a_host_name_that_cannot_be_an_id_names_kiosk_id(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "gate 12/#")
    base = write_config(tmp_path, kiosk={"id": None})
    found = problems(base)
    assert len(found) == 1
    assert found[0].startswith(f"{base}: [kiosk] id: not set, and the host name 'gate 12/#'")
    assert found[0].endswith("set [kiosk] id")


def test_config_check_show_says_where_each_key_came_from(tmp_path: Path, capsys) -> None:
    base = write_config(tmp_path)
    gate = drop_in(base, "20-gate.toml", '[kiosk]\nid = "gate-12"\n')
    assert main(["config", "check", str(base), "--show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kiosk"]["id"] == "gate-12"
    assert shown["files"] == [str(base), str(gate)]
    assert shown["sources"]["[kiosk] id"] == str(gate)
    assert shown["sources"]["[kiosk] venue_id"] == str(base)
    assert shown["sources"]["[gate] unlock_s"] == "default"


def test_a_commissioning_finding_names_the_per_gate_file(tmp_path: Path) -> None:
    """An inline secret in a world-readable kiosk.d file: that file is named, and chmodded."""
    keys = tmp_path / "passes.jwks.json"
    keys.write_text(
        json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": "A" * 43}]})
    )
    base = write_config(
        tmp_path,
        kiosk={"venue_secret": None},
        passes={"issuers": ["kz-health"], "keys_file": str(keys)},
    )
    base.chmod(0o640)
    gate = drop_in(base, "20-gate.toml", '[kiosk]\nvenue_secret = "a-real-venue-secret-0042"\n')
    gate.chmod(0o644)
    [item] = [f for f in findings(load_config(base)) if "readable by every user" in f.message]
    assert (item.path, item.where) == (gate, "[kiosk] venue_secret")
    assert str(gate) in item.message and item.fix.endswith(f"chmod 0640 {gate}")
