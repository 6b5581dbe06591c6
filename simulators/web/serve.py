"""`kiosk sim --web HOST:PORT`: the simulated kiosk's own web server (display and console),
with the simulated world in the console, and a throwaway console account for the run.

The server is the kiosk's (kiosk/web/app.py ``start_web``) on the daemon's observable gate and
input; the simulation only adds its world (``console_options={"sim": ...}``: the controls and
the camera view) and points ``[web]`` at the chosen address and the run's accounts file.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.web.server import WebServer

DEFAULT_LISTEN = "127.0.0.1:8088"
SIM_ACCOUNT = "sim-operator"
ACCOUNTS_FILE = "console-accounts"


@dataclass(frozen=True)
class SimWeb:
    """The running server and how to reach it."""

    server: WebServer
    account: str
    password: str  # a throwaway simulation account's: printed once, on the terminal
    accounts_file: Path

    @property
    def display_url(self) -> str:
        return self.server.url + "/"

    @property
    def console_url(self) -> str:
        return self.server.url + "/console"

    def lines(self) -> tuple[str, str]:
        """The first two lines `kiosk sim --web` prints: where, and how to log in."""
        return (
            f"kiosk sim: display {self.display_url}  console {self.console_url}",
            f"kiosk sim: console login: name {self.account} password {self.password} "
            f"(a throwaway operator account of this run, in {self.accounts_file})",
        )

    def stop(self) -> None:
        self.server.stop()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8088`` for IPv6) as (host, port); ValueError saying what is
    wrong. Port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web wants HOST:PORT (e.g. {DEFAULT_LISTEN}, port 0: any free)")
    return host, int(port)


def create_account(folder: Path) -> tuple[str, str, Path]:
    """A new operator account with a random password in ``folder``'s accounts file:
    (name, password, file). Written like `kiosk passwd` does (salted scrypt, mode 0640)."""
    from kiosk.web.auth import Account, hash_password
    from kiosk.web.passwd import write_accounts

    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path = folder / ACCOUNTS_FILE
    write_accounts(path, {SIM_ACCOUNT: Account(SIM_ACCOUNT, "operator", hash_password(password))})
    return SIM_ACCOUNT, password, path


def start_sim_web(
    cfg: Config,
    *,
    listen: str,
    view: Any,
    emit: Callable[[Any], None],
    liveness: Any,
    sim: Any,
) -> SimWeb:
    """Start the kiosk's web server for the simulated kiosk (``cfg`` as the daemon runs it)
    with ``sim`` (simulators.web.controls.WorldControls) in the console."""
    from kiosk import __version__
    from kiosk.metrics import Metrics
    from kiosk.web.app import start_web

    host, port = parse_listen(listen)
    name, password, accounts = create_account(cfg.state_dir)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    web = replace(cfg.web, enabled=True, listen=address, accounts_file=str(accounts))
    cfg = replace(cfg, web=web)
    metrics = Metrics(version=__version__)
    view.subscribe(metrics)
    # The simulation's own first line says where the server listens (and how to log in).
    server_log = logging.getLogger("kiosk.web.app")
    level = server_log.level
    server_log.setLevel(logging.WARNING)
    try:
        server = start_web(
            cfg,
            view=view,
            emit=emit,
            liveness=liveness,
            metrics=metrics,
            console_options={"sim": sim},
        )
    finally:
        server_log.setLevel(level)
    return SimWeb(server, name, password, accounts)
