"""What one check found (`Check`), and the table or JSON the technician reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"

EXIT_OK = 0
"""Nothing failed (warnings allowed)."""
EXIT_FAIL = 1
"""At least one check failed."""
EXIT_CONFIG = 2
"""The configuration did not load; nothing else was checked."""


@dataclass(frozen=True)
class Check:
    """The result of one check.

    ``ok`` is True (passed, possibly with a ``warning``), False (failed) or None (skipped:
    not configured, or not reachable because an earlier step failed). ``fix`` says what to
    do and is shown under failed and warned checks; ``notes`` are extra detail lines (the
    problems of a configuration, for instance). Nothing here may hold an ID or a secret.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    warning: bool = False
    notes: tuple[str, ...] = ()

    @classmethod
    def passed(cls, name: str, detail: str, *, notes: Sequence[str] = ()) -> Check:
        """A check that found nothing wrong."""
        return cls(name, True, detail, notes=tuple(notes))

    @classmethod
    def warned(cls, name: str, detail: str, fix: str, *, notes: Sequence[str] = ()) -> Check:
        """A check that passed with something the technician should look at."""
        return cls(name, True, detail, fix, warning=True, notes=tuple(notes))

    @classmethod
    def failed(cls, name: str, detail: str, fix: str, *, notes: Sequence[str] = ()) -> Check:
        """A check that found the kiosk cannot work as configured."""
        return cls(name, False, detail, fix, notes=tuple(notes))

    @classmethod
    def skipped(cls, name: str, detail: str) -> Check:
        """A check that did not apply (not configured) or could not run."""
        return cls(name, None, detail)

    @property
    def status(self) -> str:
        """``OK``, ``WARN``, ``FAIL`` or ``SKIP``."""
        if self.ok is None:
            return SKIP
        if not self.ok:
            return FAIL
        return WARN if self.warning else OK

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: name, status, ok, detail, notes, fix."""
        return {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "detail": self.detail,
            "notes": list(self.notes),
            "fix": self.fix,
        }


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing failed, 1 when something did (a configuration error is decided earlier)."""
    return EXIT_FAIL if any(c.ok is False for c in checks) else EXIT_OK


def write_table(checks: Sequence[Check], out: TextIO) -> None:
    """An aligned plain-text table, fixes under the checks that need one, then a summary."""
    name_w = max([len("CHECK")] + [len(c.name) for c in checks])
    status_w = len("STATUS")
    indent = " " * (name_w + 2 + status_w + 2)
    out.write(f"{'CHECK':<{name_w}}  {'STATUS':<{status_w}}  DETAIL\n")
    for c in checks:
        out.write(f"{c.name:<{name_w}}  {c.status:<{status_w}}  {c.detail}\n")
        for note in c.notes:
            out.write(f"{indent}{note}\n")
        if c.fix and c.status in (FAIL, WARN):
            out.write(f"{indent}fix: {c.fix}\n")
    counts = {s: sum(1 for c in checks if c.status == s) for s in (FAIL, WARN, OK, SKIP)}
    warnings = f"{counts[WARN]} warning{'s' if counts[WARN] != 1 else ''}"
    out.write(f"\n{counts[FAIL]} failed, {warnings}, {counts[OK]} ok, {counts[SKIP]} skipped\n")


def write_json(checks: Sequence[Check], out: TextIO) -> None:
    """The checks as one JSON list."""
    json.dump([c.as_dict() for c in checks], out, indent=2)
    out.write("\n")


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (broker and stream URLs may carry one)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def size_text(n: float) -> str:
    """Bytes for people: ``512 B``, ``12.3 kB``, ``180 MB``, ``1.2 GB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if n < 10 and unit != "B" else f"{n:.0f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def ms_text(ms: float) -> str:
    """A latency for people: ``0.4 ms``, ``12 ms``."""
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def age_text(seconds: float) -> str:
    """A duration for people: ``40 s``, ``12 min``, ``5 h``, ``3 days``."""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86_400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} days"
