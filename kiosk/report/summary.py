"""A period's figures from the kiosk's events: aggregate counts only, never a subject.

Every figure is defined from what the store records (mqtt.md's event types); the legend of
the printed report repeats these definitions for the reader:

- decisions: ``decision`` events, by decision and by reason;
- entries and exits: ``passage`` events by ``direction``, per local hour;
- peak occupancy: the highest ``occupancy`` any event of the period carries (passages,
  forced passages, mode changes), and when it was first reached;
- busiest quarter hour: the quarter of a local hour (:00, :15, :30, :45) with the most
  entries; persons a minute = its entries / 15;
- decision time: ``latency_ms`` of the decisions (from the code being read to the
  decision), p50 and p99 by nearest rank;
- time offline: the store has no record of the status link itself, so this follows the
  controller's own rule (kiosk/controller.py): a decision made without the service (reason
  ``backend_unavailable`` or ``clock_untrusted``, or a pass deciding alone) starts a span, the
  next decision the service answered ends it, and so does a restart of the kiosk (the span
  then ends at the last record before it). A span still open ends at the period's end or now.
  With no status service configured there is nothing to be offline from.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.report.query import Extract

QUARTER_S = 15 * 60
OFFLINE_REASONS = frozenset({"backend_unavailable", "clock_untrusted"})


@dataclass(frozen=True)
class Span:
    """A stretch of time, epoch seconds; ``open`` when it had not ended by ``end``."""

    start: float
    end: float
    open: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class HourRow:
    """Entries and exits in one local hour starting at ``start``."""

    start: float
    entries: int
    exits: int


@dataclass(frozen=True)
class Summary:
    """Everything a report shows, for one kiosk store and one period."""

    start: float
    end: float
    zone: ZoneInfo
    kiosk_ids: tuple[str, ...]
    events: int
    by_decision: dict[str, int]
    by_reason: dict[str, int]
    entries: int
    exits: int
    hours: list[HourRow]
    peak_occupancy: tuple[int, float] | None
    busiest_quarter: tuple[float, int] | None
    latency_ms: tuple[float, float, int] | None
    offline: list[Span] | None
    forced_passages: int
    passage_timeouts: int
    fire_alarms: int
    commands: int
    commands_refused: int
    notes: list[str] = field(default_factory=list)
    #: Why time offline is not counted, when it is not (``offline`` is None).
    no_service: str = ""

    @property
    def decisions(self) -> int:
        return sum(self.by_decision.values())

    @property
    def offline_s(self) -> float | None:
        return None if self.offline is None else sum(s.seconds for s in self.offline)


def summarize(
    extract: Extract,
    *,
    start: float,
    end: float,
    zone: ZoneInfo,
    has_service: bool,
    now: float,
    no_service: str = "no status service configured: nothing to be offline from",
) -> Summary:
    """The figures of ``extract`` (the events of ``[start, end)``), in ``zone``'s local time."""
    events = extract.events
    decisions = [e for _, e in events if e.get("type") == "decision"]
    by_decision = Counter(str(e.get("decision")) for e in decisions)
    by_reason = Counter(str(e.get("reason")) for e in decisions)
    entries = [t for t, e in events if e.get("type") == "passage" and e.get("direction") == "entry"]
    exits = [t for t, e in events if e.get("type") == "passage" and e.get("direction") == "exit"]
    notes: list[str] = []
    if extract.empty_store:
        notes.append("the event store holds no events yet")
    elif not events:
        notes.append("no events were recorded in this period")
    if extract.unreadable:
        n = extract.unreadable
        notes.append(
            f"{n} event{'s' if n != 1 else ''} in the period could not be read (not counted)"
        )
    return Summary(
        start=start,
        end=end,
        zone=zone,
        kiosk_ids=tuple(sorted({str(e["kiosk_id"]) for _, e in events if "kiosk_id" in e})),
        events=len(events),
        by_decision=dict(by_decision.most_common()),
        by_reason=dict(by_reason.most_common()),
        entries=len(entries),
        exits=len(exits),
        hours=_hours(entries, exits, zone),
        peak_occupancy=_peak(events),
        busiest_quarter=_busiest_quarter(entries, zone),
        latency_ms=_latency([e.get("latency_ms") for e in decisions]),
        offline=(
            _offline(extract, start=start, end=min(end, max(now, start))) if has_service else None
        ),
        forced_passages=sum(1 for _, e in events if e.get("type") == "forced_passage"),
        passage_timeouts=sum(1 for _, e in events if e.get("type") == "passage_timeout"),
        fire_alarms=sum(
            1 for _, e in events if e.get("type") == "alarm" and e.get("input") == "open"
        ),
        commands=sum(1 for _, e in events if e.get("type") == "command"),
        commands_refused=sum(
            1 for _, e in events if e.get("type") == "command" and e.get("ok") is False
        ),
        notes=notes,
        no_service="" if has_service else no_service,
    )


def floor_local(t: float, zone: ZoneInfo, minutes: int) -> float:
    """The start of the local ``minutes``-long slot (60: the hour) that holds ``t``."""
    local = datetime.fromtimestamp(t, tz=zone)
    slot = local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
    return slot.timestamp()


def _hours(entries: list[float], exits: list[float], zone: ZoneInfo) -> list[HourRow]:
    """One row per local hour from the first to the last with a passage, quiet ones too."""
    ins = Counter(floor_local(t, zone, 60) for t in entries)
    outs = Counter(floor_local(t, zone, 60) for t in exits)
    busy = set(ins) | set(outs)
    if not busy:
        return []
    rows: list[HourRow] = []
    hour, last = min(busy), max(busy)
    while hour <= last:
        rows.append(HourRow(hour, ins[hour], outs[hour]))
        # Step in UTC and floor again: a local hour may be 30 or 90 minutes at a DST change.
        hour = floor_local(hour + 3600, zone, 60)
    return rows


def _peak(events: list[tuple[float, dict[str, Any]]]) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    for t, e in events:
        occupancy = e.get("occupancy")
        if not isinstance(occupancy, int) or isinstance(occupancy, bool):
            continue
        if best is None or occupancy > best[0]:
            best = (occupancy, t)
    return best


def _busiest_quarter(entries: list[float], zone: ZoneInfo) -> tuple[float, int] | None:
    quarters = Counter(floor_local(t, zone, 15) for t in entries)
    if not quarters:
        return None
    # The earliest of equally busy quarters.
    start, count = min(quarters.items(), key=lambda kv: (-kv[1], kv[0]))
    return start, count


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in (0, 1]) of a non-empty sorted list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _latency(values: list[Any]) -> tuple[float, float, int] | None:
    numbers = sorted(
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    )
    if not numbers:
        return None
    return percentile(numbers, 0.50), percentile(numbers, 0.99), len(numbers)


def _offline_evidence(event: dict[str, Any]) -> bool | None:
    """True: decided without the service; False: the service answered; None: says nothing."""
    if event.get("type") != "decision":
        return None
    if event.get("via") == "online":
        return False
    if event.get("reason") in OFFLINE_REASONS or event.get("via") == "pass":
        return True
    return None


def _offline(extract: Extract, *, start: float, end: float) -> list[Span]:
    """Offline spans within ``[start, end)``; a kiosk offline at its last decision before the
    period is offline from the period's start."""
    spans: list[Span] = []
    since = start if extract.prior is not None and _offline_evidence(extract.prior) else None
    last_t: float | None = None
    for t, e in extract.events:
        if e.get("type") == "mode" and e.get("cause") == "start":
            # A restart: the kiosk was offline until its last record before it stopped (none
            # in the period: when it stopped is unknown, so nothing is counted), and starts
            # online.
            if since is not None and last_t is not None and last_t > since:
                spans.append(Span(since, last_t))
            since = None
        else:
            offline = _offline_evidence(e)
            if offline and since is None:
                since = t
            elif offline is False and since is not None:
                spans.append(Span(since, t))
                since = None
        last_t = t
    if since is not None:
        spans.append(Span(since, max(end, since), open=True))
    return spans


def day_bounds(day: datetime, zone: ZoneInfo) -> tuple[float, float]:
    """Epoch seconds of local midnight of ``day`` and of the next day, in ``zone``."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = start.date() + timedelta(days=1)
    return start.timestamp(), datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).timestamp()
