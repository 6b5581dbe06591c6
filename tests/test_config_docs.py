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


def test_every_range_is_documented():
    """The row of each numeric key gives its limits as ``min-max``."""
    doc = (REPO / "config" / "README.md").read_text().splitlines()

    def num(v: float) -> str:
        return str(int(v)) if v == int(v) else f"{v:g}"

    missing = []
    for section, keys in SECTIONS.items():
        for key, spec in keys.items():
            if spec.kind not in (int, float) or spec.choices:
                continue
            low = 0 if spec.min == -1 else spec.min  # "-1 (none) or pin 0-53"
            rows = [line for line in doc if line.startswith(f"| `{key}` |")]
            if not any(f"{num(low)}-{num(spec.max)}" in row for row in rows):
                missing.append(f"[{section}] {key} {num(spec.min)}-{num(spec.max)}")
    assert missing == []
