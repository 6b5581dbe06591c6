"""The `kiosk report` command line: which store, which period, which output."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.clock import parse_time
from kiosk.report.glossary import LANGS
from kiosk.report.summary import day_bounds

EX_USAGE = 2
TIME_FORMS = "RFC 3339 (2026-12-01T18:00:00+05:00) or local YYYY-MM-DD HH:MM"


class UsageError(Exception):
    """A bad option value; the message names the option."""


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in epoch seconds."""

    start: float
    end: float


def add_arguments(p: argparse.ArgumentParser, *, default_config: str) -> None:
    """The options of `kiosk report`."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config", default=default_config, help="configuration file (its state_dir and timezone)"
    )
    where.add_argument(
        "--state-dir", help="the kiosk's state folder, without a configuration (times in --tz)"
    )
    p.add_argument("--day", help="one local day, YYYY-MM-DD (default: today)")
    p.add_argument("--from", dest="from_", metavar="TIME", help=f"start: {TIME_FORMS}")
    p.add_argument("--to", metavar="TIME", help="end (default: now)")
    p.add_argument("--tz", help="time zone (default: [policy] timezone; UTC with --state-dir)")
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the reasons")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")


def cmd_report(args: argparse.Namespace) -> int:
    """`kiosk report`: print the period's figures; 2 on a bad option or an unreadable store."""
    from kiosk.report.query import read_period
    from kiosk.report.render import render_json, render_text
    from kiosk.report.summary import summarize

    try:
        store, zone, backend = _where(args)
        period = parse_period(args.day, args.from_, args.to, zone=zone, now=time.time())
    except UsageError as exc:
        print(f"kiosk report: {exc}", file=sys.stderr)
        return EX_USAGE
    extract = read_period(store, period.start, period.end, probe_service=backend is None)
    if backend is None:
        has_service = extract.ever_online
        why = "no decision in this store was answered by a status service; see --config"
    else:
        has_service = backend != "none"
        why = "no status service configured: nothing to be offline from"
    summary = summarize(
        extract,
        start=period.start,
        end=period.end,
        zone=zone,
        has_service=has_service,
        now=time.time(),
        no_service=why,
    )
    render = render_json if args.json else render_text
    print(render(summary, store=os.fspath(store), lang=args.lang))
    return 0


def _where(args: argparse.Namespace) -> tuple[Path, ZoneInfo, str | None]:
    """The store's path, the zone, and the status backend (None: not known)."""
    from kiosk.core import EVENTS_DB

    if args.state_dir is not None:
        return Path(args.state_dir) / EVENTS_DB, _zone(args.tz or "UTC"), None
    from kiosk.config import load_config

    cfg = load_config(args.config)
    zone = _zone(args.tz or cfg.policy.timezone)
    return cfg.state_dir / EVENTS_DB, zone, str(cfg.status.backend)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UsageError(f"--tz: {name!r} is not a known time zone (e.g. Asia/Almaty)") from None


def parse_period(
    day: str | None, from_: str | None, to: str | None, *, zone: ZoneInfo, now: float
) -> Period:
    """The period the options name; today in ``zone`` by default. Raises UsageError."""
    if day is not None and (from_ is not None or to is not None):
        raise UsageError("give --day, or --from and --to, not both")
    if to is not None and from_ is None:
        raise UsageError("--to needs --from")
    if from_ is not None:
        start = parse_local(from_, zone=zone, option="--from")
        end = now if to is None else parse_local(to, zone=zone, option="--to")
        if end <= start:
            raise UsageError(f"--to ({to or 'now'}) must be after --from ({from_})")
        return Period(start, end)
    if day is None:
        today = datetime.fromtimestamp(now, tz=zone)
        return Period(*day_bounds(today, zone))
    try:
        parsed = date.fromisoformat(day.strip())
    except ValueError:
        raise UsageError(f"--day: {day!r} is not a date (write YYYY-MM-DD)") from None
    return Period(*day_bounds(datetime(parsed.year, parsed.month, parsed.day), zone))


def parse_local(text: str, *, zone: ZoneInfo, option: str) -> float:
    """RFC 3339 (or epoch seconds) as kiosk/clock.py reads it; a time without an offset is
    local time in ``zone``. Raises UsageError naming ``option``."""
    try:
        return parse_time(text)
    except ValueError:
        pass
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a time (write {TIME_FORMS})") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.timestamp()
