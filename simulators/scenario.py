"""Scenario files: what happens at a simulated entrance, step by step (TOML).

See simulators/scenarios/README.md for the format. Loading reports every problem at once,
naming the file, the step and the key, like the kiosk's configuration.
"""

from __future__ import annotations

import difflib
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.clock import parse_time
from kiosk.errors import ConfigError

STATUSES = ("green", "blue", "yellow", "red")
PRESENT = ("pass", "bare_iin", "text", "expired_pass", "forged_pass", "unknown_iin")
SOURCES = ("camera", "scanner")
SERVICE = ("up", "down", "slow", "errors", "garbage")
DEVICE_ACTIONS = ("unplug", "replug")
COMMANDS = ("open_once", "lockdown", "resume", "reload_config", "reset_occupancy")

_STEP_KEYS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "at": ((int, float), None),
    "present": (str, None),
    "status": (str, None),
    "person": (int, None),
    "pass_status": (str, None),
    "pass_age_s": ((int, float), 0),
    "text": (str, None),
    "source": (str, "camera"),
    "inverted": (bool, False),
    "walk": (bool, True),
    "walk_after_s": ((int, float), 1.5),
    "fire_alarm": (bool, None),
    "command": (str, None),
    "service": (str, None),
    "latency_ms": (int, 2000),
    "camera": (str, None),
    "scanner": (str, None),
    "forced_passage": (bool, None),
    "exit": (bool, None),
    "expect": (str, None),
    "note": (str, None),
}
_CROWD_KEYS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "at": ((int, float), 0),
    "count": (int, None),
    "every_s": ((int, float), 2.0),
    "statuses": (dict, {"green": 1}),
    "bare_iin_share": ((int, float), 0.0),
    "scanner_share": ((int, float), 0.0),
    "walk_away_share": ((int, float), 0.0),
    "walk_after_s": ((int, float), 1.5),
}


@dataclass
class Step:
    """One thing that happens at ``at`` seconds (scenario time)."""

    at: float
    action: str  # present, fire_alarm, command, service, camera, scanner, forced_passage, exit
    args: dict[str, Any] = field(default_factory=dict)
    expect: str | None = None  # "decision/reason" the step's presentation must end in


@dataclass
class Scenario:
    """A parsed scenario: steps in time order."""

    name: str
    path: Path
    config: Path | None
    start: float | None  # the wall-clock time the scenario begins at (opening hours matter)
    seed: int
    speed: float
    steps: list[Step]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario; ConfigError lists every problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    problems: list[str] = []
    head = raw.get("scenario", {})
    for key in raw:
        if key not in ("scenario", "step", "crowd"):
            problems.append(
                f"{path}: [{key}]: unknown section{_near(key, ['scenario', 'step', 'crowd'])}"
            )
    config = head.get("config")
    start = None
    if "start" in head:
        try:
            start = parse_time(str(head["start"]))
        except ValueError as exc:
            problems.append(f"{path}: [scenario] start: {exc}")
    seed = head.get("seed", 1)
    speed = float(head.get("speed", 1.0))
    if speed <= 0:
        problems.append(f"{path}: [scenario] speed: must be above 0")
    rng = random.Random(seed)
    steps: list[Step] = []
    for i, item in enumerate(raw.get("step", [])):
        step = _step(item, f"{path}: [[step]] #{i + 1}", problems)
        if step is not None:
            steps.append(step)
    for i, item in enumerate(raw.get("crowd", [])):
        steps.extend(_crowd(item, f"{path}: [[crowd]] #{i + 1}", problems, rng))
    if problems:
        raise ConfigError(problems)
    steps.sort(key=lambda s: s.at)
    return Scenario(
        name=str(head.get("name", path.stem)),
        path=path,
        config=(path.parent / config).resolve() if config else None,
        start=start,
        seed=int(seed),
        speed=speed,
        steps=steps,
    )


def _near(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _values(item: Any, keys: dict, where: str, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: must be a table")
        return None
    values: dict[str, Any] = {}
    for key, value in item.items():
        if key not in keys:
            problems.append(f"{where} {key}: unknown key{_near(key, list(keys))}")
            continue
        kind = keys[key][0]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            problems.append(f"{where} {key}: wrong type {type(value).__name__}")
            continue
        values[key] = value
    for key, (_, default) in keys.items():
        values.setdefault(key, default)
    return values


def _choice(v: dict, key: str, choices: tuple[str, ...], where: str, problems: list[str]) -> None:
    if v.get(key) is not None and v[key] not in choices:
        problems.append(
            f"{where} {key}: {v[key]!r} is not one of {', '.join(choices)}"
            + _near(str(v[key]), list(choices))
        )


def _step(item: Any, where: str, problems: list[str]) -> Step | None:
    v = _values(item, _STEP_KEYS, where, problems)
    if v is None:
        return None
    if v["at"] is None:
        problems.append(f"{where} at: is required")
        return None
    for key, choices in (
        ("present", PRESENT),
        ("status", STATUSES),
        ("pass_status", STATUSES),
        ("source", SOURCES),
        ("service", SERVICE),
        ("camera", DEVICE_ACTIONS),
        ("scanner", DEVICE_ACTIONS),
        ("command", COMMANDS),
    ):
        _choice(v, key, choices, where, problems)
    actions = [
        k
        for k in (
            "present",
            "fire_alarm",
            "command",
            "service",
            "camera",
            "scanner",
            "forced_passage",
            "exit",
        )
        if v[k] is not None
    ]
    if len(actions) != 1:
        problems.append(
            f"{where}: give exactly one of present, fire_alarm, command, service, camera, "
            f"scanner, forced_passage, exit (got {', '.join(actions) or 'none'})"
        )
        return None
    action = actions[0]
    if action == "present":
        if v["present"] == "text" and v["text"] is None:
            problems.append(f"{where} text: is required when present = 'text'")
        if v["present"] in ("pass", "bare_iin", "expired_pass", "forged_pass") and (
            v["person"] is None and v["status"] is None
        ):
            problems.append(f"{where}: name a test person (person = N) or a status")
    expect = v.pop("expect")
    if expect is not None and "/" not in expect:
        problems.append(f"{where} expect: write decision/reason, e.g. 'deny/status_not_allowed'")
    return Step(float(v.pop("at")), action, v, expect)


def _crowd(item: Any, where: str, problems: list[str], rng: random.Random) -> list[Step]:
    v = _values(item, _CROWD_KEYS, where, problems)
    if v is None:
        return []
    if not v["count"] or v["count"] < 1:
        problems.append(f"{where} count: is required (at least 1)")
        return []
    weights = v["statuses"]
    bad = [k for k in weights if k not in STATUSES]
    if bad:
        problems.append(f"{where} statuses: unknown status {bad[0]!r}")
        return []
    kinds, w = list(weights), list(weights.values())
    steps = []
    for n in range(v["count"]):
        bare = rng.random() < v["bare_iin_share"]
        steps.append(
            Step(
                float(v["at"]) + n * float(v["every_s"]),
                "present",
                {
                    **{k: d for k, (_, d) in _STEP_KEYS.items() if k not in ("at", "expect")},
                    "present": "bare_iin" if bare else "pass",
                    "status": rng.choices(kinds, w)[0],
                    "source": "scanner" if rng.random() < v["scanner_share"] else "camera",
                    "walk": rng.random() >= v["walk_away_share"],
                    "walk_after_s": float(v["walk_after_s"]),
                },
            )
        )
    return steps
