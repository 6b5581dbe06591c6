"""The gate's short memories, rebuilt from the event store at start.

Used passes (replay, until exp + leeway) and recent passages (anti-passback) are facts the
event store already holds: every passage event names its subject pseudonym and, for a pass,
a hash of its jti and its expiry. Rebuilding them at start keeps the SD card free of
per-decision writes beyond the event store itself.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kiosk.passback import PassbackMemory
from kiosk.replay import ReplayStore
from kiosk.store import read_recent

# How far back a restart looks: the longest pass lifetime and leeway (replay) and the
# anti-passback window, whichever is longer.
MAX_PASS_LIFETIME_S = 600.0


def seed_gate_memory(
    events_path: Path,
    *,
    replay: ReplayStore,
    passback: PassbackMemory,
    now: float,
    leeway_s: float,
    anti_passback_s: float,
) -> int:
    """Load recent passages into ``replay`` and ``passback``; returns how many were read."""
    horizon = max(MAX_PASS_LIFETIME_S + leeway_s, anti_passback_s)
    passages = read_recent(events_path, types=("passage",), since=now - horizon)
    for event in passages:
        if event.get("direction") != "entry":
            continue
        ref, exp = event.get("pass_ref"), event.get("pass_exp")
        if isinstance(ref, str) and isinstance(exp, int | float) and exp + leeway_s > now:
            replay.mark_used_ref(ref, exp + leeway_s)
        subject = event.get("subject")
        if isinstance(subject, str):
            passback.record_passage(subject, _epoch(event["ts"]))
    return len(passages)


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
