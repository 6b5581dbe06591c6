"""Logging to standard output in a form journald keeps well.

Under systemd (JOURNAL_STREAM set) each line starts with an sd-daemon ``<N>`` priority prefix,
so `journalctl -p warning` works and no timestamps are doubled; on a terminal the lines carry
their own time.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).splitlines())


def setup_logging(level: str = "info", *, stream: TextIO | None = None) -> None:
    """Send log lines to ``stream`` (standard error by default, keeping stdout for output)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def where(exc: BaseException) -> str:
    """Where an exception was raised, as ``module.py:line in function``: never its message,
    which may quote what a code said."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    f = frames[-1]
    return f"{type(exc).__name__} at {os.path.basename(f.filename)}:{f.lineno} in {f.name}"


def log_bug(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a bug in a handler: what failed and where, never the data it was handling."""
    logger.error("%s failed: %s", what, where(exc))
