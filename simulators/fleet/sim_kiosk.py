"""One simulated kiosk: the kiosk's own MQTT stack and event store, without camera or daemon."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.errors import KioskError
from kiosk.fleet.link import MqttLink
from kiosk.fleet.outbox import Outbox
from kiosk.status.mqtt import MqttStatusClient
from kiosk.store import EventStore


class SimKiosk:
    """The kiosk's MQTT stack without a camera or a daemon; decisions come from the driver."""

    def __init__(
        self,
        *,
        index: int,
        kiosk_id: str,
        broker_url: str,
        prefix: str,
        folder: Path,
        store_sync: str,
        seed: int,
    ) -> None:
        self.index = index
        self.kiosk_id = kiosk_id
        self.store = EventStore(
            folder / f"{kiosk_id}.db", kiosk_id=kiosk_id, venue_id=f"venue-{index:05d}",
            clock=SystemClock(),
        )  # fmt: skip
        if store_sync == "normal":
            _relax_sync(self.store)
        self.link = MqttLink(
            brokers=[broker_url], client_id=kiosk_id, kiosk_id=kiosk_id, prefix=prefix
        )
        self.status = MqttStatusClient(self.link)
        self.outbox = Outbox(self.store, self.link)
        # Two streams, so that the arrival times do not depend on who was looked up.
        self.arrivals = random.Random(seed * 1_000_003 + 2 * index)
        self.choices = random.Random(seed * 1_000_003 + 2 * index + 1)
        self.recorded: list[tuple[int, str]] = []  # (seq, event_id), acknowledged by the store

    def start(self) -> None:
        self.link.start()
        self.outbox.start()

    def stop(self) -> None:
        self.outbox.stop()
        self.link.stop()
        self.store.close()


def _relax_sync(store: EventStore) -> None:
    """``synchronous=NORMAL`` for a measurement of what FULL costs. The store offers no switch
    (production must not have one), so this reaches into it; never for a real kiosk."""
    with store._lock:
        conn = store._conn
        assert conn is not None
        conn.execute("PRAGMA synchronous=NORMAL")


def undelivered(kiosk: SimKiosk) -> int:
    """Events in the kiosk's store not yet acknowledged by the broker; -1 if unreadable."""
    try:
        return kiosk.store.undelivered_count()
    except KioskError:
        return -1


def quiet_kiosk_logs() -> None:
    """One 'connected' line per kiosk is noise at 1,000 kiosks: keep warnings only."""
    for name in ("kiosk.fleet.link", "kiosk.fleet.outbox", "kiosk.status.mqtt"):
        logging.getLogger(name).setLevel(logging.WARNING)
