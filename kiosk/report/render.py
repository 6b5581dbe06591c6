"""Printing a report: aligned plain columns for a venue owner, or one JSON object.

Labels are English; the reasons are said in the chosen language with the display's own
lines (kiosk/report/glossary.py). Nothing printed names a person: counts and times only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kiosk.report.glossary import glossary
from kiosk.report.summary import QUARTER_S, Span, Summary

DECISION_WORDS = {
    "admit": "let in",
    "deny": "refused",
    "refer": "sent to staff",
}
LABEL = 28  # width of the label column

LEGEND = """\
How these figures are counted
  Entries, exits        passages through the turnstile the kiosk sensed, by direction.
  Peak occupancy        the most people inside at once, as the kiosk counted them.
  Busiest quarter hour  the quarter of an hour (:00, :15, :30, :45) with the most
                        entries; persons a minute = its entries / 15.
  Decision time         from the code being read to the decision; half of the decisions
                        took at most p50, 99 in 100 at most p99.
  Time offline          the store does not record the status link itself: a span starts
                        at a decision made without the status service (service
                        unavailable, clock untrusted, or a pass deciding alone) and ends
                        at the next decision the service answered, or when the kiosk was
                        restarted. A span still open ends at the period's end or now.
  Admissions not used   the turnstile opened for someone who then did not pass."""


def render_json(s: Summary, *, store: str, lang: str) -> str:
    """The report as one JSON object (same figures as the text)."""
    words = glossary()
    out: dict[str, Any] = {
        "store": store,
        "kiosk_ids": list(s.kiosk_ids),
        "timezone": s.zone.key,
        "period": {"from": _iso(s, s.start), "to": _iso(s, s.end)},
        "events": s.events,
        "decisions": {
            "total": s.decisions,
            "by_decision": s.by_decision,
            "by_reason": s.by_reason,
            "reason_words": {reason: words.line(reason, lang) for reason in s.by_reason},
            "lang": lang,
        },
        "passages": {
            "entries": s.entries,
            "exits": s.exits,
            "by_hour": [
                {"hour": _iso(s, row.start), "entries": row.entries, "exits": row.exits}
                for row in s.hours
            ],
        },
        "peak_occupancy": (
            None
            if s.peak_occupancy is None
            else {"occupancy": s.peak_occupancy[0], "at": _iso(s, s.peak_occupancy[1], ms=True)}
        ),
        "busiest_quarter_hour": (
            None
            if s.busiest_quarter is None
            else {
                "from": _iso(s, s.busiest_quarter[0]),
                "to": _iso(s, s.busiest_quarter[0] + QUARTER_S),
                "entries": s.busiest_quarter[1],
                "persons_per_minute": round(s.busiest_quarter[1] / 15, 2),
            }
        ),
        "latency_ms": (
            None
            if s.latency_ms is None
            else {"p50": s.latency_ms[0], "p99": s.latency_ms[1], "count": s.latency_ms[2]}
        ),
        "offline": (
            {"seconds": None, "spans": [], "not_counted": s.no_service}
            if s.offline is None
            else {
                "seconds": round(s.offline_s or 0.0, 3),
                "spans": [
                    {
                        "from": _iso(s, sp.start, ms=True),
                        "to": _iso(s, sp.end, ms=True),
                        "open": sp.open,
                    }
                    for sp in s.offline
                ],
            }
        ),
        "forced_passages": s.forced_passages,
        "passage_timeouts": s.passage_timeouts,
        "fire_alarms": s.fire_alarms,
        "commands": {"total": s.commands, "refused": s.commands_refused},
        "notes": s.notes,
    }
    return json.dumps(out, ensure_ascii=False, indent=2)


def render_text(s: Summary, *, store: str, lang: str) -> str:
    """The report as aligned plain text, with the legend at the end."""
    words = glossary()
    kiosks = ", ".join(s.kiosk_ids) or "no kiosk recorded"
    lines = [
        f"Kiosk report: {kiosks}",
        _row("Period", f"{_when(s, s.start, full=True)} to {_when(s, s.end, full=True)}"),
        _row("Times in", f"{s.zone.key} local time"),
        _row("Event store", store),
        _row("Events in the period", str(s.events)),
        "",
        _row("Decisions", f"{s.decisions:>6}"),
    ]
    for decision in ("admit", "deny", "refer"):
        label = f"  {decision} ({DECISION_WORDS[decision]})"
        lines.append(_row(label, f"{s.by_decision.get(decision, 0):>6}"))
    for decision, n in s.by_decision.items():
        if decision not in DECISION_WORDS:
            lines.append(_row(f"  {decision}", f"{n:>6}"))
    if s.by_reason:
        lines += ["", _row("Reasons", f"{'count':>6}  what the gate showed")]
        for reason, n in s.by_reason.items():
            lines.append(_row(f"  {reason}", f"{n:>6}  {words.line(reason, lang)}"))
    lines += ["", _row("Entries", f"{s.entries:>6}"), _row("Exits", f"{s.exits:>6}")]
    if s.hours:
        lines += ["", "Entries and exits per hour", f"  {'hour':<{_hour_width(s)}}  entries  exits"]
        for row in s.hours:
            hour = _when(s, row.start)
            lines.append(f"  {hour:<{_hour_width(s)}}  {row.entries:>7}  {row.exits:>5}")
    lines.append("")
    lines.append(_row("Peak occupancy", _peak(s)))
    lines.append(_row("Busiest quarter hour", _quarter(s)))
    lines.append(_row("Decision time p50 / p99", _latency(s)))
    lines.append(_row("Time offline", _offline(s)))
    lines.append(_row("Forced passages", f"{s.forced_passages:>6}"))
    lines.append(_row("Admissions not used", f"{s.passage_timeouts:>6}"))
    lines.append(_row("Fire alarms", f"{s.fire_alarms:>6}"))
    refused = f"  ({s.commands_refused} refused)" if s.commands_refused else ""
    lines.append(_row("Operator commands", f"{s.commands:>6}{refused}"))
    if s.notes:
        lines += [""] + [f"Note: {note}" for note in s.notes]
    lines += ["", LEGEND]
    return "\n".join(lines)


def _row(label: str, value: str) -> str:
    return f"{label:<{LABEL}}{value}".rstrip()


def _one_day(s: Summary) -> bool:
    start = datetime.fromtimestamp(s.start, tz=s.zone)
    last = datetime.fromtimestamp(max(s.start, s.end - 1), tz=s.zone)
    return start.date() == last.date()


def _hour_width(s: Summary) -> int:
    return 5 if _one_day(s) else 16


def _when(s: Summary, t: float, *, full: bool = False) -> str:
    local = datetime.fromtimestamp(t, tz=s.zone)
    if full or not _one_day(s):
        return local.strftime("%Y-%m-%d %H:%M")
    return local.strftime("%H:%M")


def _iso(s: Summary, t: float, *, ms: bool = False) -> str:
    """Local RFC 3339; event times to the millisecond, as events carry them."""
    return datetime.fromtimestamp(t, tz=s.zone).isoformat(
        timespec="milliseconds" if ms else "seconds"
    )


def _peak(s: Summary) -> str:
    if s.peak_occupancy is None:
        return f"{'-':>6}  (no passage recorded)"
    n, at = s.peak_occupancy
    return f"{n:>6}  at {_when(s, at)}"


def _quarter(s: Summary) -> str:
    if s.busiest_quarter is None:
        return f"{'-':>6}  (no entries)"
    start, n = s.busiest_quarter
    return f"{n:>6}  entries {_window(s, start, start + QUARTER_S)}, {n / 15:.1f} persons a minute"


def _latency(s: Summary) -> str:
    if s.latency_ms is None:
        return f"{'-':>6}  (no decisions)"
    p50, p99, n = s.latency_ms
    return f"{p50:>6.1f} / {p99:.1f} ms over {n} decisions"


def _offline(s: Summary) -> str:
    if s.offline is None:
        return f"{'-':>6}  ({s.no_service})"
    if not s.offline:
        return f"{'0':>6}  (always online)"
    spans = ", ".join(_span(s, sp) for sp in s.offline[:5])
    more = f" and {len(s.offline) - 5} more" if len(s.offline) > 5 else ""
    count = f"{len(s.offline)} span" + ("s" if len(s.offline) != 1 else "")
    return f"{duration(s.offline_s or 0.0):>6}  in {count}: {spans}{more}"


def _span(s: Summary, sp: Span) -> str:
    still = " (still offline)" if sp.open else ""
    return f"{_window(s, sp.start, sp.end)}{still}"


def _window(s: Summary, start: float, end: float) -> str:
    """``18:00-18:15``; the date once when the period spans days; seconds when both ends
    fall in the same minute (a short offline spell)."""
    a = datetime.fromtimestamp(start, tz=s.zone)
    b = datetime.fromtimestamp(end, tz=s.zone)
    clock = "%H:%M:%S" if a.strftime("%Y%m%d%H%M") == b.strftime("%Y%m%d%H%M") else "%H:%M"
    first = a.strftime(clock if _one_day(s) else f"%Y-%m-%d {clock}")
    second = b.strftime(clock if a.date() == b.date() else f"%Y-%m-%d {clock}")
    return f"{first}-{second}"


def duration(seconds: float) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``: rounded down, for a person to read."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
