"""Every configuration key is documented in config/README.md."""

from __future__ import annotations

from kiosk.config.schema import SECTIONS, TABLES
from support import REPO


def test_every_key_is_documented():
    doc = (REPO / "config" / "README.md").read_text()
    missing = [
        f"[{section}] {key}"
        for section, keys in {**SECTIONS, **{f"policy.{t}": k for t, k in TABLES.items()}}.items()
        for key in keys
        if f"`{key}`" not in doc
    ]
    assert missing == []
    for section in SECTIONS:
        assert f"## `[{section}]`" in doc or f"`[{section}]`" in doc
