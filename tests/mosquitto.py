"""A real mosquitto broker for tests: simulators/broker.py's launcher, on a free loopback
port, persistence in a temporary folder saved every second, and killed (not stopped) at the
end of a `with` block, as a crash would."""

from __future__ import annotations

from pathlib import Path

from simulators.broker import Broker, free_port

__all__ = ["Mosquitto", "free_port"]


class Mosquitto(Broker):
    """One test broker; ``stop`` is a clean stop, ``kill`` a crash, ``restart`` both ways."""

    def __init__(self, folder: Path, *, port: int | None = None, extra_conf: str = "") -> None:
        # Saved every second: a test that kills the broker still finds what it had.
        super().__init__(folder, port=port, extra_conf="autosave_interval 1\n" + extra_conf)

    def restart(self) -> Mosquitto:
        """A clean stop and a start on the same port."""
        self.stop()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
