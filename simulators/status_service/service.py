"""The simulated status authority: its state (population, faults, counters) and the
background thread serving it over HTTP."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from simulators.faults import Faults
from simulators.issuer import SIM_PASS_JWKS
from simulators.population import Population
from simulators.status_service.handler import Server
from simulators.status_service.stats import Stats


class StatusService:
    """The simulated status authority on a background thread; use as a context manager.

    ``population`` answers the lookups and may be changed live; ``token`` (if set) is the
    bearer token kiosks must send; ``jwks`` is served at ``/v1/keys`` (default: the shipped
    TEST pass keys); ``max_age_s`` goes into every answer; ``seed`` drives ``error_rate``;
    ``clock`` gives ``as_of``. ``port=0`` picks a free port; ``url`` tells which.
    """

    def __init__(
        self,
        population: Population,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        jwks: dict[str, Any] | None = None,
        max_age_s: int = 300,
        seed: int = 2021,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.population = population
        self.host = host
        self.port = port
        self.token = token
        self.jwks = jwks if jwks is not None else json.loads(SIM_PASS_JWKS.read_text("utf-8"))
        self.max_age_s = max_age_s
        self.clock = clock
        self.faults = Faults()
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    def start(self) -> StatusService:
        """Listen and serve on a background thread; OSError if the port cannot be bound."""
        if self._server is not None:
            raise RuntimeError("status service already running")
        self._stopping.clear()
        server = Server((self.host, self.port), self)
        # Keep the bound port: a restarted service comes back at the same URL.
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms
            name="sim-status-service",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (idle keep-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in injected latency
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> StatusService:
        # Idempotent, so ``with service.start():`` works as well as ``with service:``.
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _track(self, conn: socket.socket) -> None:
        self.stats._count_connection()
        with self._connections_lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)
