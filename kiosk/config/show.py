"""The configuration as the kiosk understood it, for `kiosk config check --show`.

Every section with its defaults filled in and secrets masked, the [[policy.hours]] and
[[policy.rule]] windows as parsed, and the venue policy they make, in words a technician
can check against the venue's rules ("mon-fri 06:00-23:00").
"""

from __future__ import annotations

from typing import Any

from kiosk.config.load import Config
from kiosk.config.schema import DAYS, STATUSES
from kiosk.policy import Window


def shown(cfg: Config) -> dict[str, Any]:
    """A JSON-ready dict: the masked sections, the windows, ``venue_policy``, the ``files``
    merged and ``sources``: which file each key came from ("default" when from none)."""
    out: dict[str, Any] = dict(cfg.masked())
    p = cfg.policy
    out["policy"]["hours"] = [_window(w, "open", "close") for w in p.hours]
    out["policy"]["rule"] = [
        {**_window(r.window, "from", "to"), "allowed": _statuses(r.allowed)} for r in p.rules
    ]
    out["venue_policy"] = {
        "name": p.name,
        "timezone": p.timezone,
        "open": [window_text(w) for w in p.hours] or ["always"],
        "allowed": [
            f"{window_text(r.window)}: {', '.join(_statuses(r.allowed)) or 'nobody'}"
            for r in p.rules
        ]
        + [f"otherwise: {', '.join(_statuses(p.allowed)) or 'nobody'}"],
        "capacity": p.capacity or "no limit",
        "anti_passback": (
            "off"
            if p.anti_passback.value == "off"
            else f"{p.anti_passback.value}, {p.anti_passback_s:g} s"
        ),
        "offline_rule": p.offline_rule.value,
        "max_pass_age_s": p.max_pass_age_s,
        "lock_s": p.lock_s,
    }
    out["files"] = [str(f) for f in cfg.files]
    out["sources"] = dict(cfg.sources)
    return out


def _statuses(statuses: frozenset[str]) -> list[str]:
    return [s for s in STATUSES if s in statuses]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _window(w: Window, start: str, end: str) -> dict[str, Any]:
    return {
        "days": [DAYS[d] for d in sorted(w.days)],
        start: _hhmm(w.start_min),
        end: _hhmm(w.end_min),
    }


def window_text(w: Window) -> str:
    """``mon-fri 06:00-23:00``; a window past midnight says so."""
    late = " (into the next day)" if w.end_min <= w.start_min else ""
    return f"{days_text(w.days)} {_hhmm(w.start_min)}-{_hhmm(w.end_min)}{late}"


def days_text(days: frozenset[int]) -> str:
    """Weekdays as runs: ``mon-fri``, ``sat,sun``, ``mon,wed-fri``."""
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = [
        DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}{'-' if len(r) > 2 else ','}{DAYS[r[-1]]}"
        for r in runs
    ]
    return ",".join(parts) if len(days) < 7 else "every day"
