"""The problems a configuration has: every one reported at once, each naming the file its key
came from (kiosk.d merging), with the near miss for a misspelt name."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from kiosk.config.merge import Merged

# "[kiosk] id", "[[policy.hours]] #2 open", "[gpio] led_red (default 22)": section and key.
_WHERE = re.compile(r"\[\[?([^\]]+)\]\]?(?: #\d+)?(?: ([A-Za-z0-9_]+))?")


class Problems:
    """Every problem found, each line naming the file its key came from (kiosk.d merging)."""

    def __init__(self, merged: Merged) -> None:
        self.merged = merged
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.file_of(where)}: {where}: {message}")

    def file_of(self, where: str) -> Path:
        """The file that set the key ``where`` names (the base file if none did)."""
        m = _WHERE.match(where)
        if m is None:
            return self.merged.files[0]
        if m.group(2) and "." not in m.group(1):
            # A key set in no file (required, or a default in a clash) belongs in the base.
            found = self.merged.sources.get((m.group(1), m.group(2)))
            return found or self.merged.files[0]
        return self.merged.file_of(tuple(m.group(1).split(".")))

    def base(self, where: str) -> Path:
        """The folder a relative path in ``where`` is resolved against: its file's."""
        return self.file_of(where).resolve().parent


def near(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
