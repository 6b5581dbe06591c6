"""`kiosk sim --web HOST:PORT`: the simulated kiosk's own web server (display and console),
with the simulated world in the console, and a throwaway console account for the run.

The server is the daemon's own (kiosk/web/app.py ``WebFace``), started by the daemon; the
simulation only points ``[web]`` at the chosen address and at the run's accounts file, and
gives the console its world (``console_options["sim"]``: the controls and the camera view).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.web.server import WebServer

DEFAULT_LISTEN = "127.0.0.1:8088"
SIM_ACCOUNT = "sim-operator"
ACCOUNTS_FILE = "console-accounts"
START_WAIT_S = 15.0


@dataclass(frozen=True)
class Login:
    """The run's console account."""

    account: str
    password: str  # a throwaway simulation account's: printed once, on the terminal
    accounts_file: Path


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


def web_config(cfg: Config, listen: str) -> tuple[Config, Login]:
    """``cfg`` with its web server on at ``listen`` and the console's accounts in the run's
    state folder, where a new operator account is made for this run."""
    host, port = parse_listen(listen)
    name, password, accounts = create_account(cfg.state_dir)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    web = replace(cfg.web, enabled=True, listen=address, accounts_file=str(accounts))
    return replace(cfg, web=web), Login(name, password, accounts)


def wait_for_server(face: Any, alive: Callable[[], bool]) -> WebServer | None:
    """The daemon's web server once it listens; None when it did not start (the daemon's
    journal line says why) or the daemon ended first."""
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline and alive():
        server: WebServer | None = face.server
        if server is not None:
            return server
        time.sleep(0.02)  # the daemon starts its server first thing; a few turns at most
    return None


def lines(server: WebServer, login: Login) -> tuple[str, str]:
    """The first two lines `kiosk sim --web` prints: where to look, how to log in."""
    return (
        f"kiosk sim: display {server.url}/  console {server.url}/console",
        f"kiosk sim: console login: name {login.account} password {login.password} "
        f"(a throwaway operator account of this run, in {login.accounts_file})",
    )
