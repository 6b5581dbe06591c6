"""Helpers shared by the tests: paths, the test token, configurations written to tmp dirs."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIM_KEYS = REPO / "simulators" / "keys"
TOKEN = "test-token"


def write_config(
    tmp_path: Path, url: str | None = None, *, extra_toml: str = "", **sections: dict
) -> Path:
    """A valid configuration in ``tmp_path`` with some keys overridden per section;
    ``extra_toml`` is appended (arrays of tables such as ``[[policy.hours]]``)."""
    base: dict[str, dict] = {
        "kiosk": {
            "id": "k1",
            "venue_id": "v1",
            "state_dir": str(tmp_path / "state"),
            "venue_secret": "test-venue-secret-0123456789",
        },
        "passes": {"issuers": ["ashyq-sim"], "keys_file": str(SIM_KEYS / "passes.jwks.json")},
        "status": {"backend": "http" if url else "none", "url": url, "token": TOKEN},
        "policy": {"timezone": "UTC", "allowed": ["green", "blue"], "offline_rule": "refer"},
        "web": {"listen": "127.0.0.1:0"},  # a free port: tests never take the kiosk's 8088
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml(value)}")
    path = tmp_path / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n" + extra_toml)
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)
