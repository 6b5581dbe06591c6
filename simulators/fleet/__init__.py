"""The fleet simulation: many lightweight kiosks (no camera, no GPIO, no daemon) on one broker.

Each simulated kiosk runs the kiosk's own MQTT code, which is what is being measured: an
:class:`~kiosk.fleet.link.MqttLink` (one paho client, its network thread, the failover
supervisor), an :class:`~kiosk.status.mqtt.MqttStatusClient` for lookups, an
:class:`~kiosk.store.EventStore` (its own SQLite file, ``synchronous=FULL`` as in production)
and an :class:`~kiosk.fleet.outbox.Outbox`. A driver makes "decisions" at Poisson arrival times
(a seeded RNG per kiosk): look a random test person up with an 800 ms deadline, then record a
decision event. The driver loops run on a small thread pool; a kiosk's decisions are serial,
as at a real turnstile. Kiosks live in worker processes of at most ~150 (paho's select() loop
cannot watch file descriptors above 1023); the orchestrating process holds the observer.

An observer client subscribes to ``{prefix}/kiosk/+/events`` with a persistent session (so a
broker restart loses nothing queued for it) and collects (kiosk, seq, event id): after the run
and a drain period, a recorded event never received is lost, an event id received twice is a
duplicate, a missing seq is a gap.

::

    report = run_fleet(broker_url=broker.url, kiosks=200, duration_s=30, rate_per_kiosk=0.1)
    print(report.format())

``local_stack()`` starts its own mosquitto and a status responder in a separate process, so
that kiosk code, responder and broker show up as three processes with their own CPU time.
Nothing here logs a subject, a payload or a pseudonym.

Modules: ``sim_kiosk`` (one kiosk), ``driver`` (arrivals and decisions), ``workers`` (the
kiosk processes), ``observer`` (reception and the loss tally), ``procstats`` (CPU, threads,
RSS), ``run`` (one run), ``report``, ``stack`` (a broker and responder of our own) and
``command`` (``kiosk fleet``).
"""

from simulators.fleet.command import add_arguments, run_command
from simulators.fleet.errors import FleetError
from simulators.fleet.report import FleetReport
from simulators.fleet.run import (
    DEADLINE_S,
    DEFAULT_DRAIN_S,
    DEFAULT_WORKERS,
    STORE_SYNCS,
    run_fleet,
)
from simulators.fleet.sim_kiosk import quiet_kiosk_logs
from simulators.fleet.stack import LocalStack, have_mosquitto, local_stack
from simulators.fleet.workers import DEFAULT_KIOSKS_PER_PROCESS

__all__ = [
    "DEADLINE_S",
    "DEFAULT_DRAIN_S",
    "DEFAULT_KIOSKS_PER_PROCESS",
    "DEFAULT_WORKERS",
    "STORE_SYNCS",
    "FleetError",
    "FleetReport",
    "LocalStack",
    "add_arguments",
    "have_mosquitto",
    "local_stack",
    "quiet_kiosk_logs",
    "run_command",
    "run_fleet",
]
