"""Request counters of the simulated HTTP status service."""

from __future__ import annotations

from simulators.counters import Counters


class Stats(Counters):
    """Counters of API requests (``/_sim/`` requests are not counted).

    ``requests`` counts every API request read; each one is either answered (counted in
    ``by_status`` under its HTTP status) or ``dropped`` (closed unanswered while down).
    ``connections`` counts accepted TCP connections, so tests can see keep-alive reuse.
    """

    def __init__(self) -> None:
        super().__init__("requests", "dropped", "connections", tally="by_status")

    @property
    def requests(self) -> int:
        """API requests read."""
        return self.total("requests")

    @property
    def dropped(self) -> int:
        """API requests closed without an answer."""
        return self.total("dropped")

    @property
    def connections(self) -> int:
        """TCP connections accepted (control connections included)."""
        return self.total("connections")

    @property
    def by_status(self) -> dict[int, int]:
        """Answered API requests by HTTP status code."""
        return self.tally()

    def _count(self, *, request: bool = False, dropped: bool = False, status: int = 0) -> None:
        self.add(status or None, requests=request, dropped=dropped)

    def _count_connection(self) -> None:
        self.add(connections=1)
