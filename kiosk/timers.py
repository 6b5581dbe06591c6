"""Named one-shot timers for the controller loop (no threads: the loop asks what is due)."""

from __future__ import annotations

from collections.abc import Hashable


class Timers:
    """At most one pending deadline per name; setting a name again replaces it."""

    def __init__(self) -> None:
        self._due: dict[str, tuple[float, Hashable]] = {}

    def set(self, name: str, due: float, token: Hashable = None) -> None:
        """Fire ``name`` at monotonic time ``due``, carrying ``token``."""
        self._due[name] = (due, token)

    def cancel(self, name: str) -> None:
        """Forget ``name`` if pending."""
        self._due.pop(name, None)

    def pending(self, name: str) -> bool:
        """Whether ``name`` is waiting to fire."""
        return name in self._due

    def next_due(self) -> float | None:
        """The earliest deadline, or None."""
        return min((due for due, _ in self._due.values()), default=None)

    def pop_due(self, now: float) -> list[tuple[str, Hashable]]:
        """Remove and return the timers due at ``now``, earliest first."""
        due = sorted((d, name, tok) for name, (d, tok) in self._due.items() if d <= now)
        for _, name, _ in due:
            del self._due[name]
        return [(name, tok) for _, name, tok in due]
