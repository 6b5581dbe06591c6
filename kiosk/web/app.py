"""The kiosk's web face put together (display.md): display, console, metrics and liveness.

``start_web`` builds the routes from the configuration and starts the server in a thread of
the daemon. Handlers only read the observable gate and hand commands to the controller
(``emit``); nothing here decides anything.

``/metrics`` beyond loopback (a listen address other than loopback) needs the bearer token
of ``[web] metrics_token``; on loopback only the kiosk itself can ask. ``/healthz`` answers
200 while every loop of the daemon keeps its promise of progress (kiosk/liveness.py, the
same promises that feed the systemd watchdog), 503 otherwise.
"""

from __future__ import annotations

import hmac
import importlib
import inspect
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from kiosk import __version__
from kiosk.config.sections import Config, WebSection
from kiosk.config.values import is_loopback
from kiosk.errors import KioskError
from kiosk.gate.view import GateView
from kiosk.liveness import Liveness
from kiosk.logs import log_bug
from kiosk.metrics import Metrics, TextfileWriter
from kiosk.report.glossary import glossary
from kiosk.secret import Secret
from kiosk.tls import server_context
from kiosk.web.display import DisplaySettings, Screens, next_opening
from kiosk.web.pages import register_display
from kiosk.web.server import Request, Response, Routes, WebServer

log = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
Emit = Callable[[Any], None]  # the controller's emit (kiosk.gate.inputs.Command and friends)


def screens_for(cfg: Config) -> Screens:
    """The display's screens as this configuration wants them."""
    readers = tuple(
        name
        for name, on in (("camera", cfg.camera.enabled), ("scanner", cfg.scanner.enabled))
        if on
    )
    settings = DisplaySettings(
        langs=tuple(cfg.web.languages),
        show_holder=cfg.web.show_holder,
        readers=readers,
        unlock_s=cfg.gate.unlock_s,
        deny_light_s=cfg.gate.deny_light_s,
        refer_light_s=cfg.gate.refer_light_s,
    )
    policy = cfg.policy
    return Screens(
        glossary().with_overrides(cfg.message_overrides()),
        settings,
        opening=lambda now: next_opening(policy, now),
    )


def build_routes(
    *,
    web_cfg: WebSection,
    view: GateView,
    emit: Emit,
    liveness: Liveness,
    metrics: Metrics,
    screens: Screens,
    metrics_token: Secret | None = None,
    now: Callable[[], float] = time.time,
    console_options: dict[str, Any] | None = None,
    require_loops: tuple[str, ...] = (),
) -> Routes:
    """The routes of the display, ``/metrics``, ``/healthz`` and (when it is there) the
    console."""
    routes = Routes()
    register_display(routes, view=view, screens=screens, now=now)
    host, _ = web_cfg.host_port
    routes.add(
        "GET",
        "/metrics",
        metrics_handler(metrics, remote=not is_loopback(host), token=metrics_token),
    )
    routes.add("GET", "/healthz", healthz_handler(liveness, view, require=require_loops))
    register_console(
        routes,
        {
            "web_cfg": web_cfg,
            "view": view,
            "emit": emit,
            "liveness": liveness,
            "metrics": metrics,
            "accounts_file": web_cfg.accounts_file,
            "session_s": web_cfg.session_s,
            "now": now,
            **(console_options or {}),
        },
    )
    return routes


def metrics_handler(
    metrics: Metrics, *, remote: bool, token: Secret | None
) -> Callable[[Request], Response]:
    """``GET /metrics``: the Prometheus text; beyond loopback only with the bearer token."""

    def handler(request: Request) -> Response:
        if remote:
            if token is None:
                return Response.text(403, "metrics beyond loopback need [web] metrics_token\n")
            given = request.header("authorization")
            expected = f"Bearer {token.reveal()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return Response(
                    401,
                    b"bearer token required\n",
                    headers=[("WWW-Authenticate", 'Bearer realm="metrics"')],
                )
        return Response(200, metrics.exposition(), PROMETHEUS_TEXT, [("Cache-Control", "no-store")])

    return handler


def healthz_handler(
    liveness: Liveness, view: GateView, *, require: tuple[str, ...] = ()
) -> Callable[[Request], Response]:
    """``GET /healthz``: 200 while every loop keeps its promise of progress, else 503; a
    loop named in ``require`` that has not promised anything yet counts as stale (a
    controller that never turned is not healthy)."""

    def handler(request: Request) -> Response:
        stale = sorted({*liveness.stale(), *(n for n in require if not liveness.promised(n))})
        body = {
            "ok": not stale,
            "stale": stale,  # loop names (controller, camera, scanner): nothing about people
            "mode": view.snapshot().mode,
            "version": __version__,
        }
        return Response(
            503 if stale else 200,
            json.dumps(body).encode(),
            "application/json",
            [("Cache-Control", "no-store")],
        )

    return handler


def register_console(routes: Routes, offers: dict[str, Any]) -> bool:
    """Mount the console (kiosk/web/console.py) when it is installed; its ``register`` is
    given the keyword arguments it names from ``offers``. False when there is none."""
    try:
        console = importlib.import_module("kiosk.web.console")
    except ModuleNotFoundError as exc:
        if exc.name != "kiosk.web.console":
            raise  # the console is there but something it needs is not: a real error
        log.info("web: no console in this build; display, metrics and liveness only")
        return False
    register = console.register
    params = list(inspect.signature(register).parameters.values())[1:]  # after ``routes``
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in offers
    ]
    if missing:
        # The two halves were built apart (issue 10): say what is missing, serve the rest.
        log.error("web: the console needs %s, which the app does not give: console off", missing)
        return False
    names = {p.name for p in params}
    register(routes, **{k: v for k, v in offers.items() if k in names})
    return True


def ssl_context(web_cfg: WebSection) -> ssl.SSLContext | None:
    """The server's TLS context from ``tls_cert``/``tls_key``, or None for plain HTTP."""
    if not (web_cfg.tls_cert and web_cfg.tls_key):
        return None
    try:
        return server_context(web_cfg.tls_cert, web_cfg.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise KioskError(f"[web] tls_cert/tls_key unusable: {exc}") from exc


def start_web(
    cfg: Config,
    *,
    view: GateView,
    emit: Emit,
    liveness: Liveness,
    metrics: Metrics,
    extra_routes: Callable[[Routes], None] | None = None,
    now: Callable[[], float] = time.time,
    console_options: dict[str, Any] | None = None,
    require_loops: tuple[str, ...] = (),
) -> WebServer:
    """Build the routes, start the server (a thread of its own), say where it listens.

    ``extra_routes`` adds paths of the caller's (``kiosk sim --web``: the simulated world).
    """
    routes = build_routes(
        web_cfg=cfg.web,
        view=view,
        emit=emit,
        liveness=liveness,
        metrics=metrics,
        screens=screens_for(cfg),
        metrics_token=cfg.metrics_token,
        now=now,
        console_options=console_options,
        require_loops=require_loops,
    )
    if extra_routes is not None:
        extra_routes(routes)
    host, port = cfg.web.host_port
    server = WebServer(routes, host=host, port=port, ssl_context=ssl_context(cfg.web)).start()
    log.info("web: display, console and metrics on %s", server.url)
    return server


class WebFace:
    """The daemon's web server and metrics textfile, started and stopped as one.

    A server that cannot start (the port taken, a bad certificate) is one journal line: the
    gate works without its screen, and the technician sees why in the journal.
    ``extra_routes`` (settable until ``start``) adds a caller's paths, ``console_options``
    more arguments for the console (``kiosk sim --web`` gives it the simulated world, ``sim``).
    """

    def __init__(
        self,
        cfg: Config,
        *,
        view: GateView,
        emit: Emit,
        liveness: Liveness,
        metrics: Metrics,
        now: Callable[[], float] = time.time,
        extra_routes: Callable[[Routes], None] | None = None,
        require_loops: tuple[str, ...] = ("controller",),
    ) -> None:
        self._cfg = cfg
        self.extra_routes = extra_routes
        self.console_options: dict[str, Any] = {"timezone": cfg.policy.timezone}
        self._args: dict[str, Any] = {
            "view": view,
            "emit": emit,
            "liveness": liveness,
            "metrics": metrics,
            "now": now,
            "require_loops": require_loops,
        }
        self._metrics = metrics
        self.server: WebServer | None = None
        self.textfile: TextfileWriter | None = None

    def start(self) -> None:
        """Start what the configuration enables."""
        if self._cfg.web.enabled:
            try:
                self.server = start_web(
                    self._cfg,
                    extra_routes=self.extra_routes,
                    console_options=self.console_options,
                    **self._args,
                )
            except KioskError as exc:
                log.error("web: not started, the display and console are dark: %s", exc)
            except Exception as exc:  # noqa: BLE001 - a bug in a page's set-up must not stop the gate
                log_bug(log, "web start", exc)
        if self._cfg.metrics.textfile:
            self.textfile = TextfileWriter(
                self._metrics,
                self._cfg.metrics.textfile,
                period_s=self._cfg.metrics.textfile_period_s,
            ).start()

    def stop(self) -> None:
        """Stop the server (its streams end) and the textfile writer."""
        if self.server is not None:
            self.server.stop()
        if self.textfile is not None:
            self.textfile.stop()
