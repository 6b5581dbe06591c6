"""The simulated status authority: a real HTTP server speaking status-api.md.

Kiosks and tests talk to it over a real socket, so the kiosk's own HTTP client always runs
(no mock inside the core). Faults can be switched while it runs, from Python
(``service.faults.set(down=True)``) or from another process over HTTP::

    POST /v1/status     {"sub": ...} -> the answer, 404 unknown_subject, 400, 401
    GET  /v1/keys       the pass JWK Set
    GET  /_sim/faults   the current faults        POST /_sim/faults  {"down": true, ...}
    POST /_sim/status   {"sub": ..., "st": ...}   change a person's status live
    GET  /_sim/stats    request counters          POST /_sim/reset   clear faults and counters

The ``/_sim/`` control endpoints need no token and ignore faults (so ``down`` can always be
switched off again); keep the service on loopback. Logs name method, path and status only:
never a subject.

Modules: ``service`` (:class:`StatusService`), ``handler`` (the HTTP server and routes),
``stats`` (request counters) and ``standalone`` (the command line); the faults are
:mod:`simulators.faults`, shared with the MQTT responder.
"""

from simulators.answers import rfc3339 as rfc3339  # re-exported: callers import it from here
from simulators.faults import Faults
from simulators.status_service.handler import IDLE_TIMEOUT_S, MAX_BODY_BYTES
from simulators.status_service.service import StatusService
from simulators.status_service.standalone import add_arguments, main, run_foreground
from simulators.status_service.stats import Stats

__all__ = [
    "IDLE_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "Faults",
    "StatusService",
    "Stats",
    "add_arguments",
    "main",
    "rfc3339",
    "run_foreground",
]
